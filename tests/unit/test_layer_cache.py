"""The layer-fragment cache never trusts what it reads back.

A fragment whose captured contents are cut short or altered, or a damaged fragment, is a miss: the
layer is read again, the cache is repaired, the analysis is what a clean run gives, and a warning
says what happened (on the analysis, printed by the CLI).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.image.cache import CACHE_WARNING_PREFIX
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image
from portwarden.core.services.pipeline import (
    AnalysisRequest,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from tests.support.fragments import rewrite_fragment, split_fragment
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout


def dpkg_status(names: list[str]) -> str:
    return "".join(
        f"Package: {name}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
        for i, name in enumerate(names)
    )


BASE_PACKAGES = [f"base-{i}" for i in range(40)]
TOP_PACKAGES = [*BASE_PACKAGES, *(f"extra-{i}" for i in range(25))]


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    base = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
            file("var/lib/dpkg/status", dpkg_status(BASE_PACKAGES)),
        ]
    )
    top = build_layer(
        [
            file("var/lib/dpkg/status", dpkg_status(TOP_PACKAGES)),
            file(
                "usr/lib/python3/dist-packages/attrs-23.2.0.dist-info/METADATA",
                "Name: attrs\nVersion: 23.2.0\n",
            ),
        ]
    )
    return write_oci_layout(tmp_path / "layout", build_image([base, top]))


def fragments_with_contents(cache_root: Path) -> list[Path]:
    found = [p for p in fragments(cache_root) if split_fragment(p.read_bytes())[0]["captured"]]
    assert found, "the first analysis captured no contents"
    return found


def fragments(cache_root: Path) -> list[Path]:
    found = sorted(p for p in (cache_root / "fragments").rglob("*.json.zst"))
    assert len(found) == 2
    return found


def forget_analyses(cache_root: Path) -> None:
    """Drop the image-level results and the layer stacks' entries: the next scan is then of an image
    whose layers are cached, assembled from its fragments, which is what these tests are about (a
    rescan of the same image, or of one on the same layers, is otherwise answered whole)."""
    shutil.rmtree(cache_root / "analyses", ignore_errors=True)
    shutil.rmtree(cache_root / "stacks", ignore_errors=True)


def package_keys(analysis: ImageAnalysis) -> list[tuple[str, str, str]]:
    return [(p.type.value, p.name, p.version) for p in analysis.packages]


def cache_warnings(analysis: ImageAnalysis) -> list[str]:
    return [w for w in analysis.warnings if w.startswith(CACHE_WARNING_PREFIX)]


def alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


def cut_contents(path: Path) -> None:
    """The captured contents emptied, the fragment otherwise intact."""
    path.write_bytes(rewrite_fragment(path.read_bytes(), body=lambda _: b""))


def alter_contents(path: Path) -> None:
    """One byte of the captured contents changed, the fragment otherwise intact."""

    def flip(body: bytes) -> bytes:
        data = bytearray(body)
        data[len(data) // 2] ^= 0x20
        return bytes(data)

    path.write_bytes(rewrite_fragment(path.read_bytes(), body=flip))


@pytest.mark.parametrize("damage", [cut_contents, alter_contents], ids=lambda f: f.__name__)
def test_damaged_captured_contents_are_a_miss_and_get_repaired(
    layout: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    source = f"oci-dir:{layout}"
    first = analyze_image(source, ImageAccess(), blobs=blobs)
    assert len(first.packages) == 66 and cache_warnings(first) == []

    for path in fragments_with_contents(cache_root):
        damage(path)
    forget_analyses(cache_root)
    second = analyze_image(source, ImageAccess(), blobs=blobs)
    assert package_keys(second) == package_keys(first)
    warnings = cache_warnings(second)
    assert warnings and all("the layer was read again" in w for w in warnings)
    assert any(
        ("truncated" if damage is cut_contents else "does not match its digest") in w for w in warnings
    )

    # The cache was repaired: the next run uses it, without a warning, with the same result.
    forget_analyses(cache_root)
    third = analyze_image(source, ImageAccess(), blobs=blobs)
    assert package_keys(third) == package_keys(first) and cache_warnings(third) == []
    for path in fragments_with_contents(cache_root):
        document, body = split_fragment(path.read_bytes())
        offset = 0
        for sha, size in document["captured"]:
            assert hashlib.sha256(body[offset : offset + size]).hexdigest() == sha
            offset += size


def test_a_damaged_fragment_is_a_miss(layout: Path, tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    source = f"oci-dir:{layout}"
    first = analyze_image(source, ImageAccess(), blobs=blobs)
    for path in fragments(cache_root):
        alter(path)
    forget_analyses(cache_root)
    second = analyze_image(source, ImageAccess(), blobs=blobs)
    assert package_keys(second) == package_keys(first)
    assert len(cache_warnings(second)) == 2
    assert all("unreadable fragment" in w for w in cache_warnings(second))
    forget_analyses(cache_root)
    assert cache_warnings(analyze_image(source, ImageAccess(), blobs=blobs)) == []


def test_assemble_phase_reads_a_layer_again_when_its_fragment_is_damaged(
    layout: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        access = ImageAccess()
        request = AnalysisRequest(source=f"oci-dir:{layout}")
        pointer = resolve_phase(request, access, blobs=store.blobs, catalog=store.catalog)
        for task in pointer.layers:
            analyze_layer_phase(request.source, task, access, blobs=store.blobs)
        for path in fragments_with_contents(tmp_path / "home" / "cache"):
            alter_contents(path)
        with caplog.at_level("WARNING", logger="portwarden.core.services.pipeline"):
            assembled = assemble_phase(
                pointer, access, blobs=store.blobs, catalog=store.catalog, analyses=store.analyses
            )
        assert assembled.package_count == 66
        analysis = store.analyses.get_analysis(pointer.image_digest)
        assert analysis is not None and cache_warnings(analysis)
        assert any("does not match its digest" in record.getMessage() for record in caplog.records)
    finally:
        store.close()


def test_cli_warns_and_reports_the_same_packages(layout: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}

    def sbom() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portwarden.cli.main", "sbom", f"oci-dir:{layout}", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    first = sbom()
    assert first.returncode == 0, first.stderr
    for path in fragments_with_contents(tmp_path / "home" / "cache"):
        alter_contents(path)
    forget_analyses(tmp_path / "home" / "cache")
    second = sbom()
    assert second.returncode == 0, second.stderr
    assert "warning: layer cache:" in second.stderr and "does not match its digest" in second.stderr
    first_packages = json.loads(first.stdout)["packages"]
    assert json.loads(second.stdout)["packages"] == first_packages
