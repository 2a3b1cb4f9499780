"""The layer-stack cache: a new image on layers already analyzed together, in the same order, gets
the native document an assembly from its fragments would print, spliced from the kept members, and
never from a damaged, misplaced or differently-made entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.base import AnalyzerOptions
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.image.cache import CACHE_WARNING_PREFIX
from portwarden.core.image.stacks import FRESH_MEMBERS, STACK_MEMBERS, LayerStackCache
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.services.acquire import ImageAccess, resolve_image
from portwarden.core.services.analyze import analyze_image, sbom_document
from portwarden.core.services.plan import plan_analysis
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, write_oci_layout
from tests.unit.test_result_cache import STATUS, FailingAnalyzer


def clock() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


BASE = build_layer(
    [
        file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
        file("var/lib/dpkg/status", STATUS),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ]
)
APP = build_layer(
    [file("app/.env", "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"), file("app/x", b"x" * 5000)]
)
OTHER = build_layer([file("srv/other", "other\n")])


def layout(root: Path, name: str, layers: list[object], **config: object) -> str:
    image = build_image(layers, ConfigSpec(**config))  # type: ignore[arg-type]
    return f"oci-dir:{write_oci_layout(root / name, image)}"


def stack_entries(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "stacks").rglob("*.zst"))


def native(source: str, blobs: FilesystemBlobStore | None, **kwargs: object) -> bytes:
    out = io.BytesIO()
    sbom_document(source, ImageAccess(), "json", blobs=blobs, clock=clock, **kwargs).write(out)  # type: ignore[arg-type]
    return out.getvalue()


def assembled(source: str, tmp_path: Path, **kwargs: object) -> bytes:
    """The document of ``source`` assembled from its fragments (a cache that has no stack entry)."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.iterdir()))}"
    return native(source, FilesystemBlobStore(fresh), **kwargs)


def forget_fragments_and_analyses(cache_root: Path) -> None:
    shutil.rmtree(cache_root / "fragments")
    shutil.rmtree(cache_root / "analyses", ignore_errors=True)


def test_the_members_are_every_field_of_the_analysis_once() -> None:
    """A new field of the analysis must be kept with the layers or made fresh for each image."""
    assert set(STACK_MEMBERS).isdisjoint(FRESH_MEMBERS)
    assert set(STACK_MEMBERS) | set(FRESH_MEMBERS) == set(ImageAnalysis.model_fields)


def test_a_new_image_on_the_same_layers_is_spliced_byte_for_byte(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"}, cmd=("/app/x",), user="app")
    native(first, blobs)
    assert len(stack_entries(cache_root)) == 1
    # Without fragments or a stored analysis, only the stack's entry can answer for the new image.
    forget_fragments_and_analyses(cache_root)
    document = native(second, blobs)
    assert document == assembled(second, tmp_path)
    parsed = json.loads(document)
    assert parsed["image"]["config"]["labels"] == {"version": "2"}
    assert parsed["image"]["config"]["cmd"] == ["/app/x"] and parsed["image"]["config"]["user"] == "app"
    assert parsed["source"]["manifest_digest"] == resolve_image(second, ImageAccess()).manifest_digest
    assert len(parsed["packages"]) == 30 and parsed["secrets"] and parsed["retrieved_files"]
    assert not (cache_root / "fragments").exists()  # nothing was read from the layers
    # The new image's analysis is stored (spliced) and reads back as the one an assembly makes.
    stored = analyze_image(second, ImageAccess(), blobs=blobs, clock=clock)
    expected = analyze_image(
        second, ImageAccess(), blobs=FilesystemBlobStore(tmp_path / "other"), clock=clock
    )
    assert stored == expected
    # Another format of the new image comes from that stored analysis, as main's would.
    cyclonedx = io.BytesIO()
    sbom_document(second, ImageAccess(), "cyclonedx-json", blobs=blobs, clock=clock).write(cyclonedx)
    assert json.loads(cyclonedx.getvalue())["components"]


def test_the_time_is_the_new_images(tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    first = layout(tmp_path, "first", [BASE, APP])
    second = layout(tmp_path, "second", [BASE, APP], labels={"a": "b"})
    native(first, blobs)
    later = datetime(2027, 5, 6, 7, 8, 9, tzinfo=UTC)
    out = io.BytesIO()
    sbom_document(second, ImageAccess(), "json", blobs=blobs, clock=lambda: later).write(out)
    assert json.loads(out.getvalue())["analyzed_at"] == "2027-05-06T07:08:09+00:00"


@pytest.mark.parametrize(
    "change",
    ["another layer on top", "the layers in another order", "other options", "another analyzer set"],
)
def test_another_stack_options_or_analyzer_set_is_not_answered(tmp_path: Path, change: str) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    native(layout(tmp_path, "first", [BASE, APP]), blobs)
    kwargs: dict[str, object] = {}
    layers = [BASE, APP]
    if change == "another layer on top":
        layers = [BASE, APP, OTHER]
    elif change == "the layers in another order":
        layers = [APP, BASE]
    elif change == "other options":
        kwargs["options"] = AnalyzerOptions(include_declared=True)
    else:
        kwargs["analyzers"] = ANALYZERS[:-1]
    second = layout(tmp_path, "second", layers, labels={"v": "2"})
    stacks = LayerStackCache(blobs, _result_key(blobs, **kwargs), 1 << 30)
    assert stacks.lookup(resolve_image(second, ImageAccess())).entry is None
    assert native(second, blobs, **kwargs) == assembled(second, tmp_path, **kwargs)
    assert len(stack_entries(cache_root)) == 2


def _result_key(blobs: FilesystemBlobStore, **kwargs: object) -> str:
    plan = plan_analysis(kwargs.get("options"), kwargs.get("analyzers", ANALYZERS), ImageAccess().limits)  # type: ignore[arg-type]
    return plan.result_cache(blobs, ImageAccess().limits).key


def test_an_analysis_with_a_failed_analyzer_keeps_no_entry(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    native(layout(tmp_path, "first", [BASE, APP]), blobs, analyzers=(*ANALYZERS, FailingAnalyzer()))
    assert stack_entries(cache_root) == []


def test_members_over_the_limit_are_not_kept(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP])
    native(first, blobs)
    resolved = resolve_image(first, ImageAccess())
    kept = LayerStackCache(blobs, _result_key(blobs), 1 << 30).lookup(resolved).entry
    assert kept is not None
    members = {name: [data] for name, data in kept.members.items()}
    size = sum(len(data) for data in kept.members.values())
    shutil.rmtree(cache_root / "stacks")
    assert LayerStackCache(blobs, _result_key(blobs), size - 1).save(resolved, kept.layers, members) is False
    assert stack_entries(cache_root) == []
    exact = LayerStackCache(blobs, _result_key(blobs), size)
    assert exact.save(resolved, kept.layers, members) is True
    assert exact.lookup(resolved).entry == kept


def _rewrite(path: Path, change: Callable[[bytes], bytes]) -> None:
    data = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 30)
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(change(data)))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_member(path: Path) -> None:
    # A package renamed: the frame is sound, the trailer's sha256 is not the body's any more.
    _rewrite(path, lambda data: data.replace(b'"pkg-1"', b'"pkg-X"', 1))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize("damage", [_flip_byte, _edit_member, _truncate])
def test_a_damaged_entry_is_a_miss_with_a_warning_and_gets_replaced(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    native(layout(tmp_path, "first", [BASE, APP]), blobs)
    (entry,) = stack_entries(cache_root)
    damage(entry)
    second = layout(tmp_path, "second", [BASE, APP], labels={"v": "2"})
    # Assembled from the fragments, printed with a warning (the analyses stored, without it).
    out = io.BytesIO()
    made = sbom_document(second, ImageAccess(), "json", blobs=blobs, clock=clock)
    assert made.analysis is not None
    (warning,) = [w for w in made.analysis.warnings if w.startswith(CACHE_WARNING_PREFIX)]
    assert "layer stack" in warning and warning.endswith("the image was assembled again")
    assert made.write(out) is False  # not kept as the document of this image's request
    expected = json.loads(assembled(second, tmp_path))
    assert json.loads(out.getvalue()) == expected | {"warnings": [*expected["warnings"], warning]}
    assert b"pkg-X" not in out.getvalue()
    assert native(second, blobs) == assembled(second, tmp_path)  # the stored analysis: no warning
    # Replaced by the assembly: the next image on these layers is spliced from a sound entry.
    forget_fragments_and_analyses(cache_root)
    third = layout(tmp_path, "third", [BASE, APP], labels={"v": "3"})
    assert native(third, blobs) == assembled(third, tmp_path)


def test_an_entry_of_another_stack_is_refused(tmp_path: Path) -> None:
    """An entry put under another stack's name (a copied cache, a collision) names its own stack."""
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    native(layout(tmp_path, "first", [BASE, APP]), blobs)
    (ours,) = stack_entries(cache_root)
    native(layout(tmp_path, "other", [BASE, OTHER]), blobs)
    (theirs,) = set(stack_entries(cache_root)) - {ours}
    shutil.copyfile(theirs, ours)
    second = layout(tmp_path, "second", [BASE, APP], labels={"v": "2"})
    found = LayerStackCache(blobs, _result_key(blobs), 1 << 30).lookup(resolve_image(second, ImageAccess()))
    assert found.entry is None and found.problem is not None and "is of stack" in found.problem
    made = sbom_document(second, ImageAccess(), "json", blobs=blobs, clock=clock)
    assert made.analysis is not None and any("is of stack" in w for w in made.analysis.warnings)
    assert native(second, blobs) == assembled(second, tmp_path)


def test_concurrent_images_on_one_stack_get_their_own_documents(tmp_path: Path) -> None:
    """The local server's worker pool may analyze images on one stack at once: each gets its own
    source and config, whichever wrote or read the entry."""
    blobs = FilesystemBlobStore(tmp_path / "cache")
    sources = [layout(tmp_path, f"image-{i}", [BASE, APP], labels={"n": str(i)}) for i in range(6)]
    expected = {source: assembled(source, tmp_path) for source in sources}
    barrier = threading.Barrier(len(sources))

    def document(source: str) -> bytes:
        barrier.wait()
        return native(source, blobs)

    for round_ in range(3):
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            documents = dict(zip(sources, pool.map(document, sources), strict=True))
        assert documents == expected, f"round {round_}"
        # And their rescans at once, from the documents stored as what they add to the entry.
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            rescans = dict(zip(sources, pool.map(document, sources), strict=True))
        assert rescans == expected, f"round {round_}, rescans"
        shutil.rmtree(tmp_path / "cache" / "analyses")
    assert len(stack_entries(tmp_path / "cache")) == 1


def stored_analyses(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "analyses").rglob("*.json.zst"))


def test_the_stored_analysis_is_its_own_members_on_the_stacks_entry(tmp_path: Path) -> None:
    """An analysis stored by a native request is a few kilobytes naming its stack; read back, it is
    the analysis a fresh assembly makes, for the image analyzed and for one spliced from its stack."""
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP])
    second = layout(tmp_path, "second", [BASE, APP], labels={"v": "2"})
    native(first, blobs)
    native(second, blobs)
    stored = stored_analyses(cache_root)
    assert len(stored) == 2 and all(path.stat().st_size < 4096 for path in stored)
    (entry,) = stack_entries(cache_root)
    assert entry.stat().st_size > max(path.stat().st_size for path in stored)
    # Without fragments, the analyses can only come from the stored entries.
    shutil.rmtree(cache_root / "fragments")
    for source in (first, second):
        again = analyze_image(source, ImageAccess(), blobs=blobs, clock=clock)
        fresh = analyze_image(
            source, ImageAccess(), blobs=FilesystemBlobStore(tmp_path / source[-6:]), clock=clock
        )
        assert again == fresh and len(again.packages) == 30


@pytest.mark.parametrize("damage", ["stack entry removed", "stack entry damaged", "stored analysis damaged"])
def test_a_stored_analysis_whose_stack_entry_is_gone_or_damaged_is_a_miss_with_a_warning(
    tmp_path: Path, damage: str
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP])
    native(first, blobs)
    (entry,) = stack_entries(cache_root)
    (stored,) = stored_analyses(cache_root)
    if damage == "stack entry removed":
        entry.unlink()
    elif damage == "stack entry damaged":
        _flip_byte(entry)
    else:
        _edit_stored(stored)
    again = analyze_image(first, ImageAccess(), blobs=blobs, clock=clock)
    warnings = [w for w in again.warnings if w.startswith(CACHE_WARNING_PREFIX)]
    assert len(warnings) == 1 and "the image was analyzed again" in warnings[0], warnings
    expected = analyze_image(first, ImageAccess(), blobs=FilesystemBlobStore(tmp_path / "fresh"), clock=clock)
    assert again.model_copy(update={"warnings": expected.warnings}) == expected
    # Stored again whole, sound: the next rescan has no warning.
    assert analyze_image(first, ImageAccess(), blobs=blobs, clock=clock) == expected


def _edit_stored(path: Path) -> None:
    # The stored analysis's own source renamed: the frame is sound, its trailer's sha256 is not.
    _rewrite(path, lambda data: data.replace(b'"type": "oci-dir"', b'"type": "oci-xxx"', 1))


@pytest.mark.parametrize("stack", ["../../fragments/x", "0" * 64, "not hex" * 9 + "a"])
def test_a_stored_analysis_naming_no_valid_stack_is_a_miss_with_a_warning(tmp_path: Path, stack: str) -> None:
    """A stored analysis whose header (its digest recomputed) names a path, an unknown stack or no
    stack id at all is refused: only an entry under a stack id, verified, completes it."""
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP])
    native(first, blobs)
    (stored,) = stored_analyses(cache_root)

    def renamed(data: bytes) -> bytes:
        body, _, trailer = data.rpartition(b"\n")
        head, _, rest = body.partition(b"\n")
        header = json.loads(head)
        header["stack"] = stack
        body = json.dumps(header).encode() + b"\n" + rest
        magic, version, _ = trailer.split(b" ")
        return body + b"\n" + magic + b" " + version + b" " + hashlib.sha256(body).hexdigest().encode()

    _rewrite(stored, renamed)
    again = analyze_image(first, ImageAccess(), blobs=blobs, clock=clock)
    warnings = [w for w in again.warnings if w.startswith(CACHE_WARNING_PREFIX)]
    assert len(warnings) == 1 and "layer stack" in warnings[0], warnings
    assert len(again.packages) == 30


def test_a_scan_of_a_new_image_on_the_stack_reads_no_layer(tmp_path: Path) -> None:
    """The analysis a scan (or the server) asks for comes from the entry too, and an analysis made
    for a scan keeps the entry for the images after it."""
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"}, user="app")
    analyze_image(first, ImageAccess(), blobs=blobs, clock=clock)
    assert len(stack_entries(cache_root)) == 1
    forget_fragments_and_analyses(cache_root)
    analysis = analyze_image(second, ImageAccess(), blobs=blobs, clock=clock)
    assert not (cache_root / "fragments").exists()  # nothing was read from the layers
    expected = analyze_image(
        second, ImageAccess(), blobs=FilesystemBlobStore(tmp_path / "other"), clock=clock
    )
    assert analysis == expected
    assert analysis.image.config["labels"] == {"version": "2"} and analysis.image.config["user"] == "app"
    # Stored on the stack: the rescan is answered from it.
    assert analyze_image(second, ImageAccess(), blobs=blobs, clock=clock) == expected


@pytest.mark.parametrize("document_format", ["cyclonedx-json", "spdx-json"])
def test_another_format_of_a_new_image_on_the_stack_is_the_assembled_one(
    tmp_path: Path, document_format: str
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"})
    native(first, blobs)
    forget_fragments_and_analyses(cache_root)

    def document(store: FilesystemBlobStore) -> bytes:
        out = io.BytesIO()
        sbom_document(second, ImageAccess(), document_format, blobs=store, clock=clock).write(out)
        return out.getvalue()

    from_stack = document(blobs)
    assert not (cache_root / "fragments").exists()
    assert from_stack == document(FilesystemBlobStore(tmp_path / "fresh"))
    assert document(blobs) == from_stack  # stored as rendered, for the identical request


def _rewrite_entry_members(cache_root: Path, source: str, change: dict[str, bytes]) -> None:
    """Store the stack's entry again with ``change``d members: a well-formed, verified entry (its
    digest is the one of what it holds) that does not make an analysis."""
    resolved = resolve_image(source, ImageAccess())
    plan = plan_analysis(AnalyzerOptions(), ANALYZERS)
    results = plan.result_cache(FilesystemBlobStore(cache_root), ImageAccess().limits)
    stacks = results.layer_stacks()
    found = stacks.lookup(resolved)
    assert found.entry is not None
    members = {name: [change.get(name, piece)] for name, piece in found.entry.members.items()}
    assert stacks.save(resolved, list(found.entry.layers), members)


@pytest.mark.parametrize("document_format", [None, "cyclonedx-json"])
def test_a_verified_entry_that_is_not_an_analysis_is_a_miss_with_a_warning(
    tmp_path: Path, document_format: str | None
) -> None:
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"})
    analyze_image(first, ImageAccess(), blobs=blobs, clock=clock)
    _rewrite_entry_members(cache_root, first, {"files": b'  "files": 5'})
    shutil.rmtree(cache_root / "analyses")
    expected = analyze_image(
        second, ImageAccess(), blobs=FilesystemBlobStore(tmp_path / "other"), clock=clock
    )
    if document_format is None:
        analysis = analyze_image(second, ImageAccess(), blobs=blobs, clock=clock)
    else:
        out = io.BytesIO()
        document = sbom_document(second, ImageAccess(), document_format, blobs=blobs, clock=clock)
        document.write(out)
        assert document.analysis is not None and json.loads(out.getvalue())["components"]
        analysis = document.analysis
    (warning,) = [w for w in analysis.warnings if w.startswith(CACHE_WARNING_PREFIX)]
    assert "is not an analysis" in warning and "assembled again" in warning
    assert analysis.model_copy(update={"warnings": expected.warnings}) == expected
    # The entry was replaced by the analysis made from the layers: the next image on them uses it.
    third = layout(tmp_path, "third", [BASE, APP], labels={"version": "3"})
    shutil.rmtree(cache_root / "fragments")
    again = analyze_image(third, ImageAccess(), blobs=blobs, clock=clock)
    assert not [w for w in again.warnings if w.startswith(CACHE_WARNING_PREFIX)]
    assert again.files == expected.files


def _renderings(cache_root: Path) -> list[Path]:
    return sorted(p for p in (cache_root / "analyses").rglob("*.zst") if ".json-" in p.name)


def test_a_document_spliced_from_the_stack_is_stored_as_what_it_adds_to_the_entry(tmp_path: Path) -> None:
    """The document of a new image on the stack is kept as its own members and the stack's id (not
    the 7 MB again): the identical request prints it spliced again, byte for byte; without the
    entry it is a miss with a warning, and the document is made again."""
    cache_root = tmp_path / "cache"
    blobs = FilesystemBlobStore(cache_root)
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"})
    native(first, blobs)
    (whole,) = _renderings(cache_root)
    document = native(second, blobs)
    spliced = [p for p in _renderings(cache_root) if p != whole]
    assert len(spliced) == 1
    assert spliced[0].stat().st_size < whole.stat().st_size / 2
    stored = zstandard.ZstdDecompressor().decompress(spliced[0].read_bytes())
    assert b'"path": "/app/x"' not in stored and stored.rsplit(b"\n", 1)[1].startswith(
        b"portwarden-rendering 2 "
    )
    # Read back: the same bytes, without the fragments (nothing is assembled).
    shutil.rmtree(cache_root / "fragments")
    assert len(stack_entries(cache_root)) == 1
    assert native(second, blobs) == document
    # Without the entry: a miss with the reason, and the document made again from the layers.
    for entry in stack_entries(cache_root):
        entry.unlink()
    out = io.BytesIO()
    again = sbom_document(second, ImageAccess(), "json", blobs=blobs, clock=clock)
    again.write(out)
    remade, printed = json.loads(out.getvalue()), json.loads(document)
    (warning,) = [w for w in remade.pop("warnings") if w.startswith(CACHE_WARNING_PREFIX)]
    assert "layer stack" in warning  # the analysis stored on the stack is refused too, and says why
    printed.pop("warnings")
    assert remade == printed


def test_an_answer_from_the_stack_loads_no_layer_reader(tmp_path: Path) -> None:
    """A new image on an analyzed stack is answered without the layer reader, the squash or the
    inflaters being imported (their import was a few per cent of the answer's time)."""
    first = layout(tmp_path, "first", [BASE, APP], labels={"version": "1"})
    second = layout(tmp_path, "second", [BASE, APP], labels={"version": "2"})
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PORTWARDEN_")}
    env["PORTWARDEN_HOME"] = str(tmp_path / "home")
    reporting = (
        "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
        "finally:\n    sys.stderr.write(' '.join(sorted(m for m in sys.modules if m in {\n"
        "        'portwarden.core.image.reader', 'portwarden.core.image.squash',\n"
        "        'portwarden.core.image.inflaters', 'portwarden.core.image.tarstream'})))"
    )

    def run(source: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-c", reporting, "sbom", source, "-o", "json"],
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )

    assert b"portwarden.core.image.reader" in run(first).stderr  # read from the layers
    answered = run(second)
    assert answered.returncode == 0 and json.loads(answered.stdout)["image"]["config"]["labels"] == {
        "version": "2"
    }
    assert answered.stderr == b""
