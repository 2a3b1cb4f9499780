"""The analysis phases and the layer-stack cache: an image on layers another image was analyzed on,
in the same order (rebuilt with another label, say), is assembled from the stack's entry without a
layer read or a cataloger run, into the analysis an assembly from its layers makes; an entry damaged
after Resolve saw it, or ``force``, makes Assemble read the layers.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import (
    AnalysisRequest,
    ResolvedPointer,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, write_oci_layout
from tests.unit.test_layer_cache import dpkg_status

PACKAGES = [f"pkg-{i}" for i in range(25)]
BASE = build_layer(
    [
        file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
        file("var/lib/dpkg/status", dpkg_status(PACKAGES)),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ]
)
APP = build_layer(
    [file("app/.env", "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"), file("app/main.py", "x\n")]
)


def clock() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def layout(root: Path, name: str, **config: object) -> str:
    image = build_image([BASE, APP], ConfigSpec(**config))  # type: ignore[arg-type]
    return f"oci-dir:{write_oci_layout(root / name, image)}"


class CountingAnalyzers:
    """The registry's analyzers, counting the runs of each one's ``analyze``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs = 0
        for analyzer in ANALYZERS:
            original = type(analyzer).analyze

            def counted(self_: object, context: object, original: object = original) -> object:
                self.runs += 1
                return original(self_, context)  # type: ignore[operator]

            monkeypatch.setattr(type(analyzer), "analyze", counted)


def run_pipeline(
    store: LocalStore, request: AnalysisRequest, keep_cataloger_results: bool = False
) -> tuple[ResolvedPointer, list[str]]:
    """The three phases as the state machine runs them; the pointer and the layers read."""
    access = ImageAccess()
    pointer = resolve_phase(request, access, blobs=store.blobs, catalog=store.catalog, clock=clock)
    read = []
    for task in pointer.layers:
        if not task.cached:
            analyze_layer_phase(request.source, task, access, blobs=store.blobs)
            read.append(task.digest)
    assemble_phase(
        pointer,
        access,
        blobs=store.blobs,
        catalog=store.catalog,
        analyses=store.analyses,
        clock=clock,
        keep_cataloger_results=keep_cataloger_results,
    )
    return pointer, read


def layer_blobs(source: str) -> list[Path]:
    root = Path(source.removeprefix("oci-dir:")) / "blobs" / "sha256"
    return [root / digest.split(":")[1] for digest in (BASE.digest, APP.digest)]


def without_own_members(analysis: ImageAnalysis) -> dict[str, object]:
    return analysis.model_dump(exclude={"source", "image", "analyzed_at"})


def test_a_relabelled_image_is_assembled_from_the_stack_without_reading_a_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        first_source = layout(tmp_path, "first", labels={"revision": "1"})
        second_source = layout(tmp_path, "second", labels={"revision": "2"}, user="app")
        first, read = run_pipeline(store, AnalysisRequest(source=first_source))
        assert not first.layer_stack and len(read) == 2
        assert sorted(p.name for p in (tmp_path / "home" / "cache" / "stacks").rglob("*.zst"))
        # Nothing of the layers is left to read: only the stack's entry can answer.
        for blob in layer_blobs(second_source):
            blob.unlink()
        shutil.rmtree(tmp_path / "home" / "cache" / "fragments")
        counting = CountingAnalyzers(monkeypatch)
        second, read = run_pipeline(store, AnalysisRequest(source=second_source))
        assert second.layer_stack and not second.stored_analysis and read == []
        assert counting.runs == 0
        analysis = store.analyses.get_analysis(second.image_digest)
        assert analysis is not None
        assert analysis.source.manifest_digest == second.image_digest
        assert analysis.image.config["labels"] == {"revision": "2"} and analysis.image.config["user"] == "app"
        assert len(analysis.packages) == 25 and analysis.secrets and analysis.retrieved_files
        image = store.catalog.get_image(second.image_digest)
        assert image is not None and image.analysis_status.value == "analyzed"
        # The analysis an assembly from the layers makes, in every member the layers determine.
        monkeypatch.undo()
        fresh = LocalStore(tmp_path / "fresh")
        try:
            reference = layout(tmp_path / "again", "second", labels={"revision": "2"}, user="app")
            pointer, _ = run_pipeline(fresh, AnalysisRequest(source=reference))
            expected = fresh.analyses.get_analysis(pointer.image_digest)
        finally:
            fresh.close()
        assert expected is not None and pointer.image_digest == second.image_digest
        assert without_own_members(analysis) == without_own_members(expected)
        assert analysis.image == expected.image
        # Stored on its stack for the next request: another account gets it from the result cache.
        other = store.for_account("team-b")
        third, read = run_pipeline(other, AnalysisRequest(source=second_source))
        assert third.stored_analysis and read == []
        assert other.analyses.get_analysis(second.image_digest) == analysis
    finally:
        store.close()


def _not_an_analysis(entry: Path, source: str, cache_root: Path) -> None:
    from tests.unit.test_layer_stacks import _rewrite_entry_members

    _rewrite_entry_members(cache_root, source, {"files": b'  "files": 5'})


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda entry, source, root: entry.write_bytes(b"not an entry"), "unreadable entry"),
        (_not_an_analysis, "is not an analysis"),
    ],
    ids=["unreadable", "verified-but-not-an-analysis"],
)
def test_an_entry_damaged_after_resolve_makes_assemble_read_the_layers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path, str, Path], None], reason: str
) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        run_pipeline(store, AnalysisRequest(source=layout(tmp_path, "first", labels={"revision": "1"})))
        second_source = layout(tmp_path, "second", labels={"revision": "2"})
        access = ImageAccess()
        request = AnalysisRequest(source=second_source)
        pointer = resolve_phase(request, access, blobs=store.blobs, catalog=store.catalog, clock=clock)
        assert pointer.layer_stack and all(task.cached for task in pointer.layers)
        (entry,) = (tmp_path / "home" / "cache" / "stacks").rglob("*.zst")
        damage(entry, second_source, tmp_path / "home" / "cache")
        # The layers Resolve passed over have no fragment either: Assemble reads them itself.
        shutil.rmtree(tmp_path / "home" / "cache" / "fragments")
        with caplog.at_level(logging.WARNING, logger="portwarden.core.services.pipeline"):
            assembled = assemble_phase(
                pointer,
                access,
                blobs=store.blobs,
                catalog=store.catalog,
                analyses=store.analyses,
                clock=clock,
            )
        assert assembled.package_count == 25
        assert any("layer stack" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
        # The entry is replaced by the new analysis's: a third image on the layers is answered from it.
        third, read = run_pipeline(
            store, AnalysisRequest(source=layout(tmp_path, "third", labels={"r": "3"}))
        )
        assert third.layer_stack and read == []
        analysis = store.analyses.get_analysis(third.image_digest)
        assert analysis is not None and len(analysis.packages) == 25
    finally:
        store.close()


def test_force_reads_the_layers_of_an_image_on_an_analyzed_stack(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        run_pipeline(store, AnalysisRequest(source=layout(tmp_path, "first", labels={"revision": "1"})))
        shutil.rmtree(tmp_path / "home" / "cache" / "fragments")
        second = layout(tmp_path, "second", labels={"revision": "2"})
        forced, read = run_pipeline(store, AnalysisRequest(source=second, force=True))
        assert not forced.layer_stack and len(read) == 2
    finally:
        store.close()


def test_other_layers_or_another_order_are_not_the_stack(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    try:
        run_pipeline(store, AnalysisRequest(source=layout(tmp_path, "first", labels={"revision": "1"})))
        reordered = write_oci_layout(tmp_path / "reordered", build_image([APP, BASE]))
        pointer, read = run_pipeline(store, AnalysisRequest(source=f"oci-dir:{reordered}"))
        assert not pointer.layer_stack and read == []  # its fragments are cached, its stack is not
        base_only = write_oci_layout(tmp_path / "base", build_image([BASE]))
        pointer, _ = run_pipeline(store, AnalysisRequest(source=f"oci-dir:{base_only}"))
        assert not pointer.layer_stack
        analysis = store.analyses.get_analysis(pointer.image_digest)
        assert analysis is not None and not analysis.secrets  # the app layer's secret is not in it
    finally:
        store.close()


def test_concurrent_assemblies_on_one_stack_keep_their_own_images(tmp_path: Path) -> None:
    """The local server's workers (and concurrent executions on AWS) may assemble images on one stack
    at once: each analysis has its own source and config, and the layers' members, whichever
    execution wrote or read the entry."""
    store = LocalStore(tmp_path / "home")
    try:
        pointer, _ = run_pipeline(
            store, AnalysisRequest(source=layout(tmp_path, "first", labels={"n": "first"}))
        )
        first = store.analyses.get_analysis(pointer.image_digest)
        assert first is not None
        expected = without_own_members(first)
        stacks = tmp_path / "home" / "cache" / "stacks"
        for round_ in range(4):
            # Odd rounds start without the entry: every execution assembles from the fragments and
            # writes the entry, and stores its analysis on it, at once.
            if round_ % 2:
                shutil.rmtree(stacks)
            sources = [
                layout(tmp_path / f"round-{round_}", f"image-{i}", labels={"n": f"{round_}-{i}"})
                for i in range(6)
            ]
            barrier = threading.Barrier(len(sources))

            def assemble(
                source: str, barrier: threading.Barrier = barrier
            ) -> tuple[ResolvedPointer, list[str]]:
                barrier.wait()
                return run_pipeline(store, AnalysisRequest(source=source))

            with ThreadPoolExecutor(max_workers=len(sources)) as pool:
                results = list(pool.map(assemble, sources))
            # Without the entry, the first executions resolve without it (later ones may find the entry
            # an earlier one wrote); with it, all use it. No layer is read: the fragments are cached.
            on_stack = [pointer.layer_stack for pointer, _ in results]
            assert not all(on_stack) if round_ % 2 else all(on_stack), f"round {round_}: {on_stack}"
            for i, (pointer, read) in enumerate(results):
                assert read == [], f"round {round_}, image {i}"
                analysis = store.analyses.get_analysis(pointer.image_digest)
                assert analysis is not None and analysis.source.manifest_digest == pointer.image_digest
                assert analysis.image.config["labels"] == {"n": f"{round_}-{i}"}
                assert without_own_members(analysis) == expected, f"round {round_}, image {i}"
            # Each stored analysis reads back whole, on whichever entry the last writer left.
            other = store.for_account(f"reader-{round_}")
            for i, (pointer, _) in enumerate(results):
                again, read = run_pipeline(other, AnalysisRequest(source=sources[i]))
                assert again.stored_analysis and read == []
                assert other.analyses.get_analysis(pointer.image_digest) == store.analyses.get_analysis(
                    pointer.image_digest
                )
        assert len(list(stacks.rglob("*.zst"))) == 1
    finally:
        store.close()


@pytest.mark.parametrize("keep", [True, False])
def test_a_host_that_keeps_cataloger_results_does_not_run_them_again_on_a_new_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """``portwarden serve`` keeps them (``keep_cataloger_results``), the functions do not: an image
    on a new layer stack whose catalogers get the same answers (the base layer alone) runs none of
    them, and its analysis is the one they would make."""
    store = LocalStore(tmp_path / "home")
    fresh = LocalStore(tmp_path / "fresh")
    try:
        run_pipeline(store, AnalysisRequest(source=layout(tmp_path, "image")), keep)
        base = build_image([BASE], ConfigSpec())
        source = f"oci-dir:{write_oci_layout(tmp_path / 'base', base)}"
        counting = CountingAnalyzers(monkeypatch)
        pointer, _ = run_pipeline(store, AnalysisRequest(source=source), keep)
        assert not pointer.layer_stack
        kept = sorted((tmp_path / "home" / "cache" / "catalogers").glob("*.zst"))
        if keep:
            assert counting.runs == 0 and kept
        else:
            assert counting.runs > 0 and kept == []
        monkeypatch.undo()
        reference, _ = run_pipeline(fresh, AnalysisRequest(source=source))
        made = store.analyses.get_analysis(pointer.image_digest)
        expected = fresh.analyses.get_analysis(reference.image_digest)
        assert made is not None and expected is not None
        assert len(made.packages) == 25
        assert made.model_dump(exclude={"analyzed_at"}) == expected.model_dump(exclude={"analyzed_at"})
    finally:
        store.close()
        fresh.close()
