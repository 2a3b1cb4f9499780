"""The layer-fragment cache stays coherent: a fragment whose captured contents expired is a miss.

Captured file contents are shared between fragments (by SHA-256), so a content object written for
one image may expire while a newer fragment still references it. Given two images sharing a base
layer, the first analyzed, and one shared content object then deleted from the bucket (as its
lifecycle expiry would), the second image's analysis still succeeds: Assemble reads the layer again,
the fragment is replaced and the content object restored, and the packages it holds are found.
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


def test_an_expired_shared_content_object_costs_a_re_read_not_the_analysis(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    first = build_image([base_layer(), build_layer([file("srv/a.txt", "a")])], ConfigSpec(cmd=("/bin/sh",)))
    second = build_image([base_layer(), build_layer([file("srv/b.txt", "b")])], ConfigSpec(cmd=("/bin/sh",)))
    push_image(first, anonymous_registry, "team/first", "1.0")
    push_image(second, anonymous_registry, "team/second", "1.0")
    assert analyze(stack, first.digest, "team/first")["status"] == "SUCCEEDED"

    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.settings.bucket
    content_key = f"{stack.settings.cache_prefix}contents/"
    sha = hashlib.sha256(APK_DATABASE.encode()).hexdigest()
    shared = f"{content_key}{sha[:2]}/{sha}"
    s3.head_object(Bucket=bucket, Key=shared)  # the base layer captured the apk database
    fragments = [
        item["Key"]
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{stack.settings.cache_prefix}fragments/")[
            "Contents"
        ]
    ]
    base_fragment = next(key for key in fragments if first.layers[0].digest.split(":")[1] in key)
    written_before = s3.head_object(Bucket=bucket, Key=base_fragment)["LastModified"]
    s3.delete_object(Bucket=bucket, Key=shared)

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
    # The broken fragment was replaced and the content restored: the next analysis is a plain hit.
    s3.head_object(Bucket=bucket, Key=shared)
    assert s3.head_object(Bucket=bucket, Key=base_fragment)["LastModified"] >= written_before
    third = build_image([base_layer(), build_layer([file("srv/c.txt", "c")])], ConfigSpec(cmd=("/bin/sh",)))
    push_image(third, anonymous_registry, "team/third", "1.0")
    assert analyze(stack, third.digest, "team/third")["status"] == "SUCCEEDED"
    assert len(stack.calls("AnalyzeLayerFunction")) == 4
