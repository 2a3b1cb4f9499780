"""The image-level result cache: a rescan of an analyzed image is answered whole, and never from a
damaged, misplaced or differently-made entry.

Keyed by manifest digest and by everything that shapes an analysis (analyzer set, options, limits);
read back under the same checks as a layer fragment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.errors import StoreError
from portwarden.core.image.cache import CACHE_WARNING_PREFIX, AnalysisCache
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image
from tests.support.ocibuild import build_image, build_layer, file, write_oci_archive, write_oci_layout

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
    for i in range(30)
)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    app = build_layer(
        [file("app/.env", "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"), file("app/x", b"x" * 5000)]
    )
    image = build_image([base, app])
    write_oci_archive(tmp_path / "image.tar", image)
    return write_oci_layout(tmp_path / "layout", image)


def layer_blobs(layout: Path) -> list[Path]:
    return [p for p in (layout / "blobs" / "sha256").iterdir() if p.stat().st_size > 1000]


def stored_analyses(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "analyses").rglob("*.json.zst"))


def without_source(analysis: ImageAnalysis) -> dict[str, object]:
    return analysis.model_dump(exclude={"source"})


def cache_warnings(analysis: ImageAnalysis) -> list[str]:
    return [w for w in analysis.warnings if w.startswith(CACHE_WARNING_PREFIX)]


def test_a_rescan_reads_no_layer(image_dir: Path, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    first = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert len(first.packages) == 30 and first.secrets
    # Without the layer blobs a read would fail: the answer can only come from the stored analysis.
    for blob in layer_blobs(image_dir):
        blob.unlink()
    second = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert second == first
    assert cache_warnings(second) == []


def test_the_same_image_from_another_source_keeps_the_facts_and_names_the_new_source(
    image_dir: Path, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    from_dir = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    from_archive = analyze_image(f"oci-archive:{tmp_path / 'image.tar'}", ImageAccess(), blobs=blobs)
    assert from_archive.source.type == "oci-archive" and from_dir.source.type == "oci-dir"
    assert from_archive.source.manifest_digest == from_dir.source.manifest_digest
    assert without_source(from_archive) == without_source(from_dir)
    assert len(stored_analyses(tmp_path / "cache")) == 1


@pytest.mark.parametrize(
    ("options", "limits"),
    [
        (AnalyzerOptions(include_declared=True), SafetyLimits()),
        (AnalyzerOptions(secret_patterns={"TOKEN": "tok_[a-z]+"}), SafetyLimits()),
        (AnalyzerOptions(retrieve_files=("/etc/os-release",)), SafetyLimits()),
        (AnalyzerOptions(), SafetyLimits(max_captured_file_bytes=1024)),
    ],
    ids=["include-declared", "secret-pattern", "retrieve", "limits"],
)
def test_other_options_or_limits_are_another_entry(
    image_dir: Path, tmp_path: Path, options: AnalyzerOptions, limits: SafetyLimits
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    analyze_image(f"oci-dir:{image_dir}", ImageAccess(limits=limits), options=options, blobs=blobs)
    # Analyzed anew (a second entry), not answered from the first one.
    assert len(stored_analyses(tmp_path / "cache")) == 2


class FailingAnalyzer:
    name: ClassVar[str] = "always-fails"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()

    def applies(self, resolver: FileResolver) -> bool:
        return True

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        raise RuntimeError("boom")


def test_another_analyzer_set_is_another_entry_and_failed_analyses_are_not_stored(
    image_dir: Path, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    failed = analyze_image(
        f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs, analyzers=(*ANALYZERS, FailingAnalyzer())
    )
    assert any(run.error for run in failed.analyzers)
    assert len(stored_analyses(tmp_path / "cache")) == 1


def _rewrite(path: Path, change: Callable[[bytes], bytes]) -> None:
    data = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(change(data)))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_document(path: Path) -> None:
    # A well-formed frame whose document was changed, digest line left as it was (the stored entry is
    # the analysis's own members on its layer stack: the time is one of them).
    def edit(data: bytes) -> bytes:
        edited = data.replace(b'"analyzed_at": "2', b'"analyzed_at": "1', 1)
        assert edited != data
        return edited

    _rewrite(path, edit)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "has no trailer"),
        (_flip_byte, "unreadable stored analysis"),
        (_edit_document, "does not match its digest"),
        # A cut frame inflates to a prefix: the trailer (and with it the digest) is what is missing.
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "has no trailer"),
    ],
    ids=["emptied", "bit-flip", "edited", "truncated"],
)
def test_a_damaged_stored_analysis_is_a_miss_with_a_warning_and_gets_replaced(
    image_dir: Path, tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    (stored,) = stored_analyses(cache_root)
    damage(stored)
    second = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert [p.name for p in second.packages] == [p.name for p in first.packages]
    warnings = cache_warnings(second)
    assert len(warnings) == 1 and reason in warnings[0] and "the image was analyzed again" in warnings[0]
    # Replaced: the next rescan is answered from it, with no warning, and reads no layer.
    for blob in layer_blobs(image_dir):
        blob.unlink()
    third = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert cache_warnings(third) == [] and [p.name for p in third.packages] == [
        p.name for p in first.packages
    ]


def test_an_analysis_stored_under_another_images_key_is_refused(image_dir: Path, tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    other_layout = write_oci_layout(
        tmp_path / "other", build_image([build_layer([file("etc/os-release", "ID=alpine\n")])])
    )
    analyze_image(f"oci-dir:{other_layout}", ImageAccess(), blobs=blobs)
    first_entry, second_entry = stored_analyses(cache_root)
    # A complete, self-consistent entry (digest line and all) copied to the wrong image's place.
    shutil.copyfile(second_entry, first_entry)
    again = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    (warning,) = cache_warnings(again)
    assert "the stored analysis is of" in warning
    assert len(again.packages) == 30


def test_cli_rescan_prints_the_same_document(image_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}

    def sbom() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "portwarden.cli.main", "sbom", f"oci-dir:{image_dir}", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        return result.stdout

    first = sbom()
    for blob in layer_blobs(image_dir):
        blob.unlink()
    assert sbom() == first


def test_concurrent_analyses_of_one_image_store_one_sound_entry(image_dir: Path, tmp_path: Path) -> None:
    # The local server's worker pool may analyze the same image twice at once: both write the entry.
    blobs = FilesystemBlobStore(tmp_path / "cache")
    barrier = threading.Barrier(4)

    def analyze(_: int) -> ImageAnalysis:
        barrier.wait()
        return analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(analyze, range(4)))
    facts = [without_source(r) | {"analyzed_at": None} for r in results]
    assert all(fact == facts[0] for fact in facts)
    assert len(stored_analyses(tmp_path / "cache")) == 1
    for blob in layer_blobs(image_dir):
        blob.unlink()
    again = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert cache_warnings(again) == [] and len(again.packages) == 30


class _ReadOnlyBlobs(FilesystemBlobStore):
    def put(self, key: str, data: bytes) -> None:
        raise StoreError(f"cannot write blob {key}: no space left on device")


def test_a_cache_that_cannot_be_written_does_not_sink_the_analysis(image_dir: Path, tmp_path: Path) -> None:
    analysis = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=_ReadOnlyBlobs(tmp_path / "cache"))
    assert len(analysis.packages) == 30


def test_an_entry_of_another_format_is_an_ordinary_miss(image_dir: Path, tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    (stored,) = stored_analyses(cache_root)
    _rewrite(stored, lambda data: data.replace(b"\nportwarden-analysis 2 ", b"\nportwarden-analysis 1 "))
    again = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert cache_warnings(again) == [] and len(again.packages) == 30


def test_an_analysis_too_large_to_read_back_cheaply_is_not_stored(image_dir: Path, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    analysis = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    (stored,) = stored_analyses(tmp_path / "cache")
    stored.unlink()
    limited = AnalysisCache(blobs, "test-key", max_document_bytes=len(analysis.model_dump_json()) - 1)
    assert limited.save(analysis) is False
    assert stored_analyses(tmp_path / "cache") == []
    exact = AnalysisCache(blobs, "test-key", max_document_bytes=len(analysis.model_dump_json()))
    assert exact.save(analysis) is True
    assert exact.lookup(analysis.source.manifest_digest).analysis == analysis


@pytest.mark.parametrize("cached", [False, True])
def test_a_native_document_encodes_the_inventory_from_its_records(
    image_dir: Path, tmp_path: Path, cached: bool
) -> None:
    """Without the cache (``--no-cache``) and with it, the native document carries the analysis as
    assembled, without an entry model (``summary``), and its records: the bytes are those of the
    whole analysis's document, which ``analysis`` builds on first use."""
    import io

    from portwarden.core.sbom.native import iter_native_json
    from portwarden.core.services.analyze import sbom_document

    def at_noon() -> datetime:
        return datetime(2024, 5, 1, 12, tzinfo=UTC)

    blobs = FilesystemBlobStore(tmp_path / "cache") if cached else None
    document = sbom_document(f"oci-dir:{image_dir}", ImageAccess(), "json", blobs=blobs, clock=at_noon)
    assert document.summary is not None and document.summary.files == ()
    assert document.inventory is not None and len(document.inventory) > 1
    out = io.BytesIO()
    document.write(out)
    whole = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), clock=at_noon)
    assert document.analysis == whole and len(whole.files) == len(document.inventory)
    assert out.getvalue() == b"".join(iter_native_json(whole))


def test_a_native_document_request_stores_the_analysis_it_prints(image_dir: Path, tmp_path: Path) -> None:
    """``sbom -o json`` encodes the inventory once for the printed document and the stored analysis:
    the document is the native JSON of the analysis, and a rescan in any form reads back the very
    analysis (owned files included) that another way of storing it gives."""
    import io

    from portwarden.core.sbom.native import iter_native_json
    from portwarden.core.services.analyze import sbom_document

    blobs = FilesystemBlobStore(tmp_path / "cache")
    document = sbom_document(f"oci-dir:{image_dir}", ImageAccess(), "json", blobs=blobs)
    assert document.analysis is not None and document.encoded is not None
    out = io.BytesIO()
    document.write(out)
    assert out.getvalue() == b"".join(iter_native_json(document.analysis))
    # Stored as its own members on the layer stack's entry, which holds the printed pieces of the
    # others, and the packages whole (core/image/stacks.py).
    (stored,) = stored_analyses(tmp_path / "cache")
    entry = zstandard.ZstdDecompressor().decompressobj().decompress(stored.read_bytes())
    assert b'"stack": ' in entry and b'"source": {' in entry and b'"files"' not in entry
    (stack,) = (tmp_path / "cache" / "stacks").rglob("*.zst")
    kept = zstandard.ZstdDecompressor().decompressobj().decompress(stack.read_bytes())
    assert b'"files": [' in kept and b'"owned_files":' in kept
    rescan = analyze_image(f"oci-dir:{image_dir}", ImageAccess(), blobs=blobs)
    assert rescan == document.analysis and cache_warnings(rescan) == []
    # The same analysis stored the other way (compact, encoded by the cache) reads back the same.
    other = FilesystemBlobStore(tmp_path / "other")
    assert AnalysisCache(other, "k").save(document.analysis)
    assert AnalysisCache(other, "k").lookup(document.analysis.source.manifest_digest).analysis == rescan
