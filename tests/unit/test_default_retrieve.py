"""/etc/passwd is retrieved by default, so ``passwd_file`` rules fire without any option.

Covered on both paths that analyze images: the pipeline phases (Resolve → AnalyzeLayer → Assemble →
Evaluate, here over the local store) and the CLI (``sbom --retrieve`` here; ``policy eval`` in
test_cli_scan, which has a vulnerability database).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.analyzers.base import AnalyzerOptions, merge_retrieve_files
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.evaluate import load_bundle_bytes, store_bundle
from portwarden.core.services.phases import evaluate_phase
from portwarden.core.services.pipeline import (
    AnalysisRequest,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from portwarden.runtime.settings import PipelineSettings
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout

PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"


def passwd_bundle(action: str = "STOP") -> dict[str, Any]:
    return {
        "id": "no-app-user",
        "version": "1_0",
        "name": "no app user",
        "policies": [
            {
                "id": "p1",
                "name": "p1",
                "version": "1_0",
                "rules": [
                    {
                        "id": "r1",
                        "gate": "passwd_file",
                        "trigger": "blacklist_usernames",
                        "action": action,
                        "params": [{"name": "user_names", "value": "app"}],
                    }
                ],
            }
        ],
        "whitelists": [],
        "mappings": [
            {
                "id": "m1",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": ["p1"],
                "whitelist_ids": [],
            }
        ],
    }


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    layer = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
            file("etc/passwd", PASSWD),
            file("etc/group", GROUP),
        ]
    )
    return write_oci_layout(tmp_path / "layout", build_image([layer]))


def test_defaults_and_additions() -> None:
    assert AnalyzerOptions().retrieve_files == ("/etc/passwd",)
    assert merge_retrieve_files(("/etc/passwd",), ["/etc/group", "/etc/passwd"]) == (
        "/etc/passwd",
        "/etc/group",
    )


def test_pipeline_settings_configure_the_retrieved_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTWARDEN_RETRIEVE_FILES", raising=False)
    assert PipelineSettings().retrieve_files == ("/etc/passwd",)
    monkeypatch.setenv("PORTWARDEN_RETRIEVE_FILES", "/etc/passwd, /etc/group")
    assert PipelineSettings().retrieve_files == ("/etc/passwd", "/etc/group")
    monkeypatch.setenv("PORTWARDEN_RETRIEVE_FILES", "")
    assert PipelineSettings().retrieve_files == ()


def test_pipeline_phases_retrieve_passwd_and_the_rule_fires(layout: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        store_bundle(store.policies, load_bundle_bytes(passwd_bundle()), now, activate=True)
        access = ImageAccess()
        request = AnalysisRequest(source=f"oci-dir:{layout}", repo_tag="registry.example/app:1")
        pointer = resolve_phase(request, access, blobs=store.blobs, catalog=store.catalog)
        for task in pointer.layers:
            analyze_layer_phase(request.source, task, access, blobs=store.blobs)
        assemble_phase(pointer, access, blobs=store.blobs, catalog=store.catalog, analyses=store.analyses)
        analysis = store.analyses.get_analysis(pointer.image_digest)
        assert analysis is not None
        assert [f.path for f in analysis.retrieved_files] == ["/etc/passwd"]
        assert base64.b64decode(analysis.retrieved_files[0].content_b64).decode() == PASSWD
        outcome = evaluate_phase(
            pointer.image_digest,
            request.repo_tag,
            analyses=store.analyses,
            policies=store.policies,
            evaluations=store.evaluations,
            feeds=store.feeds,
        )
        assert (outcome.bundle_id, outcome.final_action) == ("no-app-user", "stop")
    finally:
        store.close()


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home), **env},
        timeout=120,
        check=False,
    )


def test_cli_sbom_retrieve_adds_to_the_defaults(layout: Path, tmp_path: Path) -> None:
    result = run_cli(
        tmp_path / "home",
        "sbom",
        f"oci-dir:{layout}",
        "-o",
        "json",
        "--retrieve",
        "/etc/group",
        "--retrieve",
        "etc/passwd",
    )
    assert result.returncode == 0, result.stderr
    paths = [f["path"] for f in json.loads(result.stdout)["retrieved_files"]]
    assert paths == ["/etc/passwd", "/etc/group"]
    retrieved = {f["path"]: f for f in json.loads(result.stdout)["retrieved_files"]}
    assert base64.b64decode(retrieved["/etc/group"]["content_b64"]).decode() == GROUP
