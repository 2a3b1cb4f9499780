"""Resolve's claim on an image: of concurrent triggers for one digest, exactly one analyzes it."""

from __future__ import annotations

import threading
from pathlib import Path

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.model.records import AnalysisStatus
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import AnalysisRequest, ResolvedPointer, resolve_phase
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
