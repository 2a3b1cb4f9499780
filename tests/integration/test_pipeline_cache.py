"""The layer-fragment cache stays coherent on S3: one object a layer, and a damaged one is a miss.

A fragment carries the contents its layer captured (no object per content: each would cost AnalyzeLayer
a PUT and Assemble a GET). Given two images sharing a base layer, the first analyzed, and the base
fragment's captured contents then altered in the bucket (its zstd frame still valid), the second
image's analysis still succeeds: Resolve finds the fragment, Assemble finds it damaged, reads the
layer again and replaces the fragment, and the packages it holds are found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest

from portwarden.adapters.aws.stores import AwsAnalysisStore
from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import REGION, MotoStack, ecr_push_event, moto_stack, registry_environment
from tests.support.fragments import rewrite_fragment, split_fragment
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

APK_DATABASE = "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"


def base_layer() -> bytes:
    return build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n"),
            file("lib/apk/db/installed", APK_DATABASE),
        ]
    )


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(anonymous_registry.host, PORTWARDEN_WORK_DIR=str(tmp_path / "work"))
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def analyze(stack: MotoStack, digest: str, repository: str) -> dict[str, object]:
    started = stack.start_push(ecr_push_event(digest, repository=repository))
    execution: dict[str, object] = stack.wait(started["execution_arn"])
    return execution


def test_a_damaged_shared_fragment_costs_a_re_read_not_the_analysis(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    first = build_image([base_layer(), build_layer([file("srv/a.txt", "a")])], ConfigSpec(cmd=("/bin/sh",)))
    second = build_image([base_layer(), build_layer([file("srv/b.txt", "b")])], ConfigSpec(cmd=("/bin/sh",)))
    push_image(first, anonymous_registry, "team/first", "1.0")
    push_image(second, anonymous_registry, "team/second", "1.0")
    assert analyze(stack, first.digest, "team/first")["status"] == "SUCCEEDED"

    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.settings.bucket
    cache_prefix = stack.settings.cache_prefix
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=cache_prefix)["Contents"]
    # One object a layer (and the image-level entries: the analysis, stored on its layer stack, the
    # stack's entry, the resolution), no content objects.
    keys = [item["Key"] for item in listed if item["Key"].startswith(f"{cache_prefix}fragments/")]
    stacks = [item["Key"] for item in listed if item["Key"].startswith(f"{cache_prefix}stacks/")]
    assert len(keys) == 2 and len(stacks) == 1 and len(listed) == 5
    base_fragment = next(key for key in keys if first.layers[0].digest.split(":")[1] in key)
    stored = s3.get_object(Bucket=bucket, Key=base_fragment)["Body"].read()
    document, contents = split_fragment(stored)
    sha = hashlib.sha256(APK_DATABASE.encode()).hexdigest()
    assert [sha, len(APK_DATABASE)] in document["captured"]  # the base layer captured the apk database
    damaged = rewrite_fragment(stored, body=lambda body: body.replace(b"musl", b"MUSL"))
    assert damaged != stored
    s3.put_object(Bucket=bucket, Key=base_fragment, Body=damaged)

    execution = analyze(stack, second.digest, "team/second")

    assert execution["status"] == "SUCCEEDED", stack.history(str(execution["executionArn"]))[-3:]
    # Resolve still found the base fragment, so the Map passed it over; Assemble read it again.
    resolved = json.loads(str(execution["output"]))["resolved"]
    assert [layer["cached"] for layer in resolved["layers"]] == [True, False]
    assert len(stack.calls("AnalyzeLayerFunction")) == 3
    record = stack.stores.catalog.get_image(second.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    analysis = AwsAnalysisStore(stack.stores.documents).get_analysis(second.digest)
    assert analysis is not None and [p.name for p in analysis.packages] == ["musl"]
    assert any("does not match its digest" in warning for warning in analysis.warnings)
    # The broken fragment was replaced: the next analysis is a plain hit.
    assert split_fragment(s3.get_object(Bucket=bucket, Key=base_fragment)["Body"].read())[1] == contents
    third = build_image([base_layer(), build_layer([file("srv/c.txt", "c")])], ConfigSpec(cmd=("/bin/sh",)))
    push_image(third, anonymous_registry, "team/third", "1.0")
    assert analyze(stack, third.digest, "team/third")["status"] == "SUCCEEDED"
    assert len(stack.calls("AnalyzeLayerFunction")) == 4


def test_an_image_rebuilt_on_the_same_layers_is_assembled_from_its_layer_stack(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    """A new image on an analyzed layer stack (a rebuild with another label) runs no AnalyzeLayer, and
    Assemble makes its analysis from the stack's entry in S3, with the new image's own config."""
    layers = [base_layer(), build_layer([file("srv/a.txt", "a")])]
    first = build_image(layers, ConfigSpec(cmd=("/bin/sh",), labels={"revision": "1"}))
    rebuilt = build_image(layers, ConfigSpec(cmd=("/bin/sh",), labels={"revision": "2"}))
    push_image(first, anonymous_registry, "team/app", "1")
    push_image(rebuilt, anonymous_registry, "team/app", "2")
    assert analyze(stack, first.digest, "team/app")["status"] == "SUCCEEDED"
    assert len(stack.calls("AnalyzeLayerFunction")) == 2

    s3 = boto3.client("s3", region_name=REGION)
    fragments = s3.list_objects_v2(
        Bucket=stack.settings.bucket, Prefix=f"{stack.settings.cache_prefix}fragments/"
    )
    for item in fragments["Contents"]:  # only the stack's entry can answer for the rebuilt image
        s3.delete_object(Bucket=stack.settings.bucket, Key=item["Key"])
    execution = analyze(stack, rebuilt.digest, "team/app")

    assert execution["status"] == "SUCCEEDED", stack.history(str(execution["executionArn"]))[-3:]
    resolved = json.loads(str(execution["output"]))["resolved"]
    assert resolved["layer_stack"] and not resolved["stored_analysis"]
    assert all(layer["cached"] for layer in resolved["layers"])
    assert len(stack.calls("AnalyzeLayerFunction")) == 2  # none for the rebuilt image
    analysis = AwsAnalysisStore(stack.stores.documents).get_analysis(rebuilt.digest)
    original = AwsAnalysisStore(stack.stores.documents).get_analysis(first.digest)
    assert analysis is not None and original is not None
    assert analysis.source.manifest_digest == rebuilt.digest
    assert analysis.image.config["labels"] == {"revision": "2"}
    assert [p.name for p in analysis.packages] == ["musl"]
    assert analysis.files == original.files and analysis.packages == original.packages
    record = stack.stores.catalog.get_image(rebuilt.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
