"""`portwarden image list` and `portwarden image get`: the local store as the CLI shows it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from tests.support.stores import image_record


def digest(n: int) -> str:
    """Realistic digests (distinct from their first hex digits on), as a scan would record them."""
    return "sha256:" + hashlib.sha256(f"image-{n}".encode()).hexdigest()


def recorded_image(n: int, **options: Any) -> ImageRecord:
    return image_record(n, **options).model_copy(update={"image_digest": digest(n)})


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home), "COLUMNS": "250"},
        timeout=60,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def recorded(home: Path) -> list[ImageRecord]:
    """Three images recorded the way a scan records them, oldest first."""
    images = [
        recorded_image(1, tags=("example.test/app:1",)),
        recorded_image(
            2, status=AnalysisStatus.ANALYZED, tags=("example.test/app:2", "example.test/app:latest")
        ),
        recorded_image(0xABC, status=AnalysisStatus.ANALYSIS_FAILED).model_copy(
            update={"last_error": "layer 2: truncated gzip"}
        ),
    ]
    with LocalStore(home) as store:
        for image in images:
            store.catalog.put_image(image)
    return images


def test_list_json_newest_first(home: Path, recorded: list[ImageRecord]) -> None:
    result = run_cli("image", "list", "-o", "json", home=home)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [image["image_digest"] for image in document["images"]] == [digest(0xABC), digest(2), digest(1)]
    assert ImageRecord.model_validate(document["images"][1]) == recorded[1]


def test_list_table(home: Path, recorded: list[ImageRecord]) -> None:
    result = run_cli("image", "list", home=home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Digest" in lines[0] and "Status" in lines[0]
    row = next(line for line in lines if digest(2)[:19] in line)
    assert "example.test/app:2, example.test/app:latest" in row and "analyzed" in row
    assert any("analysis_failed" in line for line in lines)


def test_list_empty_store(home: Path) -> None:
    table = run_cli("image", "list", home=home)
    assert table.returncode == 0 and "No images" in table.stdout
    listing = run_cli("image", "list", "-o", "json", home=home)
    assert listing.returncode == 0 and json.loads(listing.stdout) == {"images": []}


def test_get_json_by_digest_hex_or_prefix(home: Path, recorded: list[ImageRecord]) -> None:
    full = digest(0xABC)
    for argument in (full, full.removeprefix("sha256:"), full[:20], full[7:25]):
        result = run_cli("image", "get", argument, home=home)
        assert result.returncode == 0, (argument, result.stderr)
        assert ImageRecord.model_validate_json(result.stdout) == recorded[2]


def test_get_table(home: Path, recorded: list[ImageRecord]) -> None:
    result = run_cli("image", "get", digest(0xABC), "-o", "table", home=home)
    assert result.returncode == 0, result.stderr
    assert digest(0xABC) in result.stdout
    assert "analysis_failed" in result.stdout and "layer 2: truncated gzip" in result.stdout


def test_get_unknown_digest_exits_2(home: Path, recorded: list[ImageRecord]) -> None:
    result = run_cli("image", "get", digest(0xDEF), home=home)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"no image {digest(0xDEF)}" in result.stderr and "image list" in result.stderr


def test_get_ambiguous_prefix_exits_2(home: Path) -> None:
    with LocalStore(home) as store:
        for n in (1, 2):
            store.catalog.put_image(image_record(n))  # digests sha256:000…01 and sha256:000…02
    result = run_cli("image", "get", "sha256:0000", home=home)
    assert result.returncode == 2
    assert "matches 2 images" in result.stderr
