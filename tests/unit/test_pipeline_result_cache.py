"""The analysis phases and the result cache: an image already analyzed with the same analyzers,
options and limits (for any account) is assembled from the stored analysis without reading a layer;
``force`` asks for a new analysis, and a stored analysis that turns out unusable is never used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import (
    AnalysisRequest,
    ResolvedPointer,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout
from tests.unit.test_layer_cache import dpkg_status, fragments

PACKAGES = [f"pkg-{i}" for i in range(25)]


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    base = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
            file("var/lib/dpkg/status", dpkg_status(PACKAGES)),
        ]
    )
    app = build_layer([file("app/main.py", "print('x')\n")])
    return write_oci_layout(tmp_path / "layout", build_image([base, app]))


def run_pipeline(store: LocalStore, request: AnalysisRequest) -> ResolvedPointer:
    access = ImageAccess()
    pointer = resolve_phase(request, access, blobs=store.blobs, catalog=store.catalog)
    for task in pointer.layers:
        if not task.cached:
            analyze_layer_phase(request.source, task, access, blobs=store.blobs)
    assemble_phase(pointer, access, blobs=store.blobs, catalog=store.catalog, analyses=store.analyses)
    return pointer


def stored_results(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "analyses").rglob("*.json.zst"))


def layer_blobs(layout: Path, pointer: ResolvedPointer) -> list[Path]:
    return [layout / "blobs" / "sha256" / task.digest.split(":")[1] for task in pointer.layers]


def test_another_account_gets_the_stored_analysis_without_reading_a_layer(
    layout: Path, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        request = AnalysisRequest(source=f"oci-dir:{layout}")
        first = run_pipeline(store, request)
        assert not first.stored_analysis
        assert len(stored_results(tmp_path / "home" / "cache")) == 1
        for blob in layer_blobs(layout, first):
            blob.unlink()
        for fragment in fragments(tmp_path / "home" / "cache"):
            fragment.unlink()
        other = store.for_account("team-b")
        second = run_pipeline(other, request)
        assert second.stored_analysis and all(task.cached for task in second.layers)
        mine = store.analyses.get_analysis(first.image_digest)
        theirs = other.analyses.get_analysis(second.image_digest)
        assert mine is not None and theirs is not None and theirs == mine
        assert len(theirs.packages) == 25
        image = other.catalog.get_image(second.image_digest)
        assert image is not None and image.analysis_status.value == "analyzed"
    finally:
        store.close()


def test_force_reads_the_layers_again(layout: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        run_pipeline(store, AnalysisRequest(source=f"oci-dir:{layout}"))
        for fragment in fragments(tmp_path / "home" / "cache"):
            fragment.unlink()
        forced = run_pipeline(store, AnalysisRequest(source=f"oci-dir:{layout}", force=True))
        assert not forced.stored_analysis and not any(task.cached for task in forced.layers)
        assert len(fragments(tmp_path / "home" / "cache")) == 2  # read again
    finally:
        store.close()


def test_a_stored_analysis_damaged_after_resolve_is_not_used(
    layout: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        request = AnalysisRequest(source=f"oci-dir:{layout}")
        run_pipeline(store, request)
        other = store.for_account("team-b")
        access = ImageAccess()
        pointer = resolve_phase(request, access, blobs=other.blobs, catalog=other.catalog)
        assert pointer.stored_analysis
        (stored,) = stored_results(tmp_path / "home" / "cache")
        stored.write_bytes(b"not an analysis")
        # The layers Resolve passed over have no fragment either: Assemble reads them itself.
        for fragment in fragments(tmp_path / "home" / "cache"):
            fragment.unlink()
        with caplog.at_level(logging.WARNING, logger="portwarden.core.services.pipeline"):
            assembled = assemble_phase(
                pointer, access, blobs=other.blobs, catalog=other.catalog, analyses=other.analyses
            )
        assert assembled.package_count == 25
        assert any("unreadable stored analysis" in r.getMessage() for r in caplog.records)
        # And the entry is replaced by the new analysis.
        assert resolve_phase(request, access, blobs=other.blobs, catalog=other.catalog).skip
        third = store.for_account("team-c")
        assert resolve_phase(request, access, blobs=third.blobs, catalog=third.catalog).stored_analysis
    finally:
        store.close()
