"""Resolve's claim on an image: of concurrent triggers for one digest, exactly one analyzes it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.errors import ClaimLostError
from portwarden.core.model.records import AnalysisClaim, AnalysisStatus
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import (
    AnalysisRequest,
    ResolvedPointer,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout


def test_concurrent_resolves_start_one_analysis_and_keep_every_tag(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", build_image([build_layer([file("etc/motd", "hi")])]))
    store = LocalStore(tmp_path / "home")
    callers = 8
    barrier = threading.Barrier(callers)
    pointers: list[ResolvedPointer | None] = [None] * callers
    errors: list[BaseException] = []

    def trigger(index: int) -> None:
        barrier.wait()
        try:
            pointers[index] = resolve_phase(
                AnalysisRequest(source=f"oci-dir:{layout}", repo_tag=f"registry.example/app:{index}"),
                ImageAccess(),
                blobs=store.blobs,
                catalog=store.catalog,
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    started = [p for p in pointers if p is not None and not p.skip]
    assert len(started) == 1
    image = store.catalog.get_image(started[0].image_digest)
    assert image is not None and image.analysis_status == AnalysisStatus.ANALYZING
    assert {f"registry.example/app:{i}" for i in range(callers)} <= set(image.repo_tags)
    store.close()


def _resolved(tmp_path: Path, store: LocalStore, owner: str) -> ResolvedPointer:
    layout = write_oci_layout(tmp_path / "layout", build_image([build_layer([file("etc/motd", "hi")])]))
    pointer = resolve_phase(
        AnalysisRequest(source=f"oci-dir:{layout}"),
        ImageAccess(),
        blobs=store.blobs,
        catalog=store.catalog,
        owner=owner,
    )
    assert pointer.owner == owner and not pointer.skip
    for layer in pointer.layers:
        if not layer.cached:
            analyze_layer_phase(pointer.source, layer, ImageAccess(), blobs=store.blobs)
    return pointer


def test_assemble_records_under_its_own_claim_and_may_be_retried(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "home") as store:
        pointer = _resolved(tmp_path, store, "execution-a")
        stores = {"blobs": store.blobs, "catalog": store.catalog, "analyses": store.analyses}
        assemble_phase(pointer, ImageAccess(), **stores)  # type: ignore[arg-type]
        # Retried after it recorded (a later step of the invocation failed): the same outcome.
        assemble_phase(pointer, ImageAccess(), **stores)  # type: ignore[arg-type]
        image = store.catalog.get_image(pointer.image_digest)
        assert image is not None and image.analysis_status is AnalysisStatus.ANALYZED


def test_assemble_writes_nothing_for_a_deleted_or_taken_over_image(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "home") as store:
        pointer = _resolved(tmp_path, store, "execution-a")
        stores = {"blobs": store.blobs, "catalog": store.catalog, "analyses": store.analyses}
        # Taken over: the claim expired and another attempt holds it now.
        store.catalog.release_claim(pointer.image_digest, "execution-a", "expired")
        claim = AnalysisClaim(owner="execution-b", deadline=datetime.now(UTC) + timedelta(hours=1))
        assert store.catalog.claim_analysis(pointer.image_digest, claim, now=datetime.now(UTC))
        with pytest.raises(ClaimLostError):
            assemble_phase(pointer, ImageAccess(), **stores)  # type: ignore[arg-type]
        image = store.catalog.get_image(pointer.image_digest)
        assert image is not None and (image.analysis_status, image.claim_owner) == (
            AnalysisStatus.ANALYZING,
            "execution-b",
        )
        assert store.analyses.get_analysis(pointer.image_digest) is None
        # Deleted: not written back.
        assert store.catalog.delete_image(pointer.image_digest)
        with pytest.raises(ClaimLostError):
            assemble_phase(pointer, ImageAccess(), **stores)  # type: ignore[arg-type]
        assert store.catalog.get_image(pointer.image_digest) is None
        assert store.analyses.get_analysis(pointer.image_digest) is None
