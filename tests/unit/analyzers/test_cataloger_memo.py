"""The cataloger memo: a cataloger's output is taken from the memo only when the view answers every
question the cataloger asked the way the view it ran on did; any other answer, a damaged entry or a
question that cannot be asked again runs the cataloger (and keeps its new output).
"""

from __future__ import annotations

import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.dpkg import DpkgAnalyzer
from portwarden.core.analyzers.memo import CatalogerMemo, TracingResolver, run_cataloger
from portwarden.core.analyzers.python import PythonPackageAnalyzer
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.files import FileRecord, FileType
from portwarden.core.model.package import PackageType
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image, sbom_document
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout

OPTIONS = AnalyzerOptions()


def status(count: int, version: str = "1") -> str:
    return "".join(
        f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: {version}.{i}-1\n\n"
        for i in range(count)
    )


def debian_files(count: int = 20, version: str = "1") -> dict[str, str]:
    files = {
        "/etc/os-release": 'ID=debian\nVERSION_ID="12"\n',
        "/var/lib/dpkg/status": status(count, version),
    }
    for i in range(count):
        files[f"/var/lib/dpkg/info/pkg-{i}.list"] = f"/usr/share/doc/pkg-{i}\n/usr/bin/tool-{i}\n"
        files[f"/usr/share/doc/pkg-{i}/copyright"] = f"Files: *\nLicense: GPL-{i % 3 + 1}\n"
    return files


def python_files() -> dict[str, str]:
    metadata = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n"
    return {"/usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA": metadata}


class Counting:
    """Counts the runs of an analyzer's ``analyze`` (the memo answered when it did not run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, analyzer_class: type[Any]) -> None:
        self.runs = 0
        original = analyzer_class.analyze

        def counted(analyzer: Any, context: AnalyzerContext) -> AnalyzerOutput:
            self.runs += 1
            return original(analyzer, context)  # type: ignore[no-any-return]

        monkeypatch.setattr(analyzer_class, "analyze", counted)


def memo_at(tmp_path: Path, key: str = "result-key") -> CatalogerMemo:
    return CatalogerMemo(FilesystemBlobStore(tmp_path / "cache"), key)


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "catalogers").glob("*.json.zst"))


def test_every_question_a_view_answers_is_written_down() -> None:
    """A public method of the resolver left to the base class would answer without a trace."""
    public = {
        name
        for name, member in vars(FileResolver).items()
        if (not name.startswith("_") or name == "__len__") and not isinstance(member, classmethod)
    }
    assert public - set(vars(TracingResolver)) == set()


def test_a_second_view_with_the_same_answers_is_answered_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(monkeypatch, DpkgAnalyzer)
    memo = memo_at(tmp_path)
    first = memo.run(DpkgAnalyzer(), FileResolver.from_files(debian_files()), OPTIONS, None)
    # Another image on the same packages, with files the cataloger never asks about.
    other = FileResolver.from_files({**debian_files(), "/app/main.py": "print(1)\n", "/etc/hosts": "x\n"})
    second = memo.run(DpkgAnalyzer(), other, OPTIONS, None)
    assert counting.runs == 1
    assert first is not None and second == first
    assert len(first.packages) == 20 and first.packages[3].licenses == ("GPL-1",)
    assert second == run_cataloger(DpkgAnalyzer(), other, OPTIONS, None)


@pytest.mark.parametrize(
    "change",
    ["status", "copyright", "file list", "mode of an asked file", "a listed file shadowed by a symlink"],
)
def test_any_other_answer_runs_the_cataloger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    counting = Counting(monkeypatch, DpkgAnalyzer)
    memo = memo_at(tmp_path)
    memo.run(DpkgAnalyzer(), FileResolver.from_files(debian_files()), OPTIONS, None)
    files = debian_files()
    view: FileResolver
    if change == "status":
        files = debian_files(version="2")
    elif change == "copyright":
        files["/usr/share/doc/pkg-7/copyright"] = "Files: *\nLicense: MIT\n"
    elif change == "file list":
        files["/var/lib/dpkg/info/pkg-7.list"] += "/usr/bin/extra\n"
    if change == "mode of an asked file":
        records = dict(FileResolver.from_files(files)._records)
        path = "/usr/share/doc/pkg-7/copyright"
        records[path] = records[path]._replace(mode=0o600)
        base = FileResolver.from_files(files)
        view = FileResolver(records, base._contents)
    elif change == "a listed file shadowed by a symlink":
        base = FileResolver.from_files(files)
        records = dict(base._records)
        records["/usr/share/doc/pkg-7"] = FileRecord(
            path="/usr/share/doc/pkg-7", type=FileType.SYMLINK, mode=0o777, link_target="/nowhere"
        )
        view = FileResolver(records, base._contents)
    else:
        view = FileResolver.from_files(files)
    found = memo.run(DpkgAnalyzer(), view, OPTIONS, None)
    assert counting.runs == 2
    # The new answers are kept too (the first question, the status file, is the same but for one
    # case: the entry under that key is replaced).
    assert memo.run(DpkgAnalyzer(), view, OPTIONS, None) == found
    assert counting.runs == 2
    assert found == run_cataloger(DpkgAnalyzer(), view, OPTIONS, None)


def test_a_cataloger_that_does_not_apply_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking its questions again would cost what running it does; nor is anything looked up for it."""
    counting = Counting(monkeypatch, DpkgAnalyzer)
    memo = memo_at(tmp_path)
    lookups: list[str] = []
    monkeypatch.setattr(memo, "_read", lambda key: lookups.append(key))
    view = FileResolver.from_files(python_files())
    assert memo.run(DpkgAnalyzer(), view, OPTIONS, None) is None
    assert memo.run(DpkgAnalyzer(), FileResolver.from_files(python_files()), OPTIONS, None) is None
    assert counting.runs == 0 and entries(tmp_path) == [] and lookups == []
    # One that applies is looked up (the same memo, the same stand-in for its entries).
    assert memo.run(PythonPackageAnalyzer(), view, OPTIONS, None) is not None
    assert len(lookups) == 1


def test_the_key_holds_options_distro_version_and_result_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(monkeypatch, PythonPackageAnalyzer)
    analyzer = PythonPackageAnalyzer()
    memo_at(tmp_path).run(analyzer, FileResolver.from_files(python_files()), OPTIONS, None)
    memo_at(tmp_path, "another-result-key").run(
        analyzer, FileResolver.from_files(python_files()), OPTIONS, None
    )
    from portwarden.core.model.distro import Distro

    debian = Distro(id="debian", version_id="12")
    memo_at(tmp_path).run(analyzer, FileResolver.from_files(python_files()), OPTIONS, debian)
    declared = AnalyzerOptions(include_declared=True)
    memo_at(tmp_path).run(analyzer, FileResolver.from_files(python_files()), declared, None)
    monkeypatch.setattr(PythonPackageAnalyzer, "version", PythonPackageAnalyzer.version + 1)
    memo_at(tmp_path).run(analyzer, FileResolver.from_files(python_files()), OPTIONS, None)
    assert counting.runs == 5 and len(entries(tmp_path)) == 5


def _rewrite(path: Path, change: str) -> None:
    raw = path.read_bytes()
    if change == "garbage":
        path.write_bytes(b"not zstd")
    elif change == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif change == "no stated size":
        data = zstandard.ZstdDecompressor().decompress(raw)
        path.write_bytes(zstandard.ZstdCompressor(write_content_size=False).compress(data))
    elif change == "over the size limit":  # a sound entry, padded past the limit (the test sets it)
        data = zstandard.ZstdDecompressor().decompress(raw)
        path.write_bytes(zstandard.ZstdCompressor().compress(data + b" " * 100))
    else:
        header_line, _, output_json = zstandard.ZstdDecompressor().decompress(raw).partition(b"\n")
        header, output = json.loads(header_line), json.loads(output_json)
        if change == "another key":
            header["key"] = "0" * 64
        elif change == "bad step":
            header["steps"][0] = [1, 2, 3]
        elif change == "bad output":
            output["packages"][0]["type"] = "no-such-type"
        data = json.dumps(header).encode() + b"\n" + json.dumps(output).encode()
        path.write_bytes(zstandard.ZstdCompressor().compress(data))


@pytest.mark.parametrize(
    "change",
    [
        "garbage",
        "truncated",
        "no stated size",
        "over the size limit",
        "another key",
        "bad step",
        "bad output",
    ],
)
def test_a_damaged_entry_runs_the_cataloger_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    counting = Counting(monkeypatch, DpkgAnalyzer)
    memo = memo_at(tmp_path)
    expected = memo.run(DpkgAnalyzer(), FileResolver.from_files(debian_files()), OPTIONS, None)
    [entry] = entries(tmp_path)
    if change == "over the size limit":
        stated = zstandard.frame_content_size(entry.read_bytes())
        monkeypatch.setattr("portwarden.core.analyzers.memo.MAX_ENTRY_BYTES", stated + 10)
    _rewrite(entry, change)
    assert memo.run(DpkgAnalyzer(), FileResolver.from_files(debian_files()), OPTIONS, None) == expected
    assert counting.runs == 2
    assert memo.run(DpkgAnalyzer(), FileResolver.from_files(debian_files()), OPTIONS, None) == expected
    assert counting.runs == 2  # replaced by a sound entry


class Raising:
    name: ClassVar[str] = "raising"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()

    def applies(self, resolver: FileResolver) -> bool:
        try:
            return resolver.exists("/etc/os-release")
        except Exception:  # a cataloger's broad handler must not swallow the probe's stop
            return False

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        raise RuntimeError("boom")


def test_a_cataloger_that_raises_keeps_nothing_and_a_broad_handler_does_not_hide_the_probe(
    tmp_path: Path,
) -> None:
    # The probe stops at the first question, through the cataloger's own handler.
    probe = TracingResolver(FileResolver.from_files(debian_files()), probing=True)
    with pytest.raises(BaseException) as stopped:
        Raising().applies(probe)
    assert not isinstance(stopped.value, Exception) and len(probe.steps) == 1
    memo = memo_at(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        memo.run(Raising(), FileResolver.from_files(debian_files()), OPTIONS, None)  # type: ignore[arg-type]
    assert entries(tmp_path) == []


class UnnamedSelection:
    """Asks for a selection no one registered: its answers cannot be asked of another view."""

    name: ClassVar[str] = "unnamed-selection"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()
    runs = 0

    def applies(self, resolver: FileResolver) -> bool:
        return True

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        found = context.resolver.selection("not-registered", lambda view: view.glob("/etc/*"))
        UnnamedSelection.runs += 1  # counted once answered (a probe stops at the question)
        return AnalyzerOutput(warnings=tuple(record.path for record in found))


def test_a_question_that_cannot_be_asked_again_keeps_nothing(tmp_path: Path) -> None:
    memo = memo_at(tmp_path)
    for _ in range(2):
        output = memo.run(UnnamedSelection(), FileResolver.from_files(debian_files()), OPTIONS, None)  # type: ignore[arg-type]
        assert output is not None and output.warnings == ("/etc/os-release",)
    assert UnnamedSelection.runs == 2 and entries(tmp_path) == []


def test_many_views_at_once_each_get_their_own_answer(tmp_path: Path) -> None:
    """Eight threads, one store: each view's output is its own, whether it ran or was kept, even
    when views share their first question's answer (the status file) and differ later."""
    memo = memo_at(tmp_path)

    def view_files(index: int) -> dict[str, str]:
        files = debian_files(count=40, version=str(index % 3))
        files[f"/usr/share/doc/pkg-{index % 40}/copyright"] = f"License: L-{index}\n"
        return files

    def one(index: int) -> bool:
        view = FileResolver.from_files(view_files(index))
        return memo.run(DpkgAnalyzer(), view, OPTIONS, None) == run_cataloger(
            DpkgAnalyzer(), view, OPTIONS, None
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(one, [i % 24 for i in range(240)]))


# ---- through the analysis ------------------------------------------------------------------------------


def clock() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _layers(version: str = "1") -> list[object]:
    base = build_layer([file(path.lstrip("/"), body) for path, body in debian_files(version=version).items()])
    app = build_layer([file(path.lstrip("/"), body) for path, body in python_files().items()])
    return [base, app]


def native(source: str, blobs: FilesystemBlobStore) -> bytes:
    out = io.BytesIO()
    sbom_document(source, ImageAccess(), "json", blobs=blobs, clock=clock).write(out)
    return out.getvalue()


def test_an_image_on_kept_results_gets_the_document_the_catalogers_would_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base image after the image built on it: its layer stack is new, its catalogers' answers
    are not; the document is byte for byte the one made without any kept result."""
    image = f"oci-dir:{write_oci_layout(tmp_path / 'image', build_image(_layers()))}"
    base = f"oci-dir:{write_oci_layout(tmp_path / 'base', build_image(_layers()[:1]))}"
    cache = FilesystemBlobStore(tmp_path / "cache")
    native(image, cache)
    counting = Counting(monkeypatch, DpkgAnalyzer)
    kept = native(base, cache)
    assert counting.runs == 0
    plain = native(base, FilesystemBlobStore(tmp_path / "plain"))
    assert counting.runs == 1
    assert kept == plain and b'"pkg-19"' in kept


def test_analyze_image_keeps_and_uses_results_and_a_changed_database_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FilesystemBlobStore(tmp_path / "cache")
    first = f"oci-dir:{write_oci_layout(tmp_path / 'one', build_image(_layers()))}"
    analyze_image(first, ImageAccess(), blobs=cache, clock=clock)
    counting = Counting(monkeypatch, DpkgAnalyzer)
    shutil.rmtree(tmp_path / "cache" / "analyses")
    shutil.rmtree(tmp_path / "cache" / "stacks")
    again = analyze_image(first, ImageAccess(), blobs=cache, clock=clock)
    assert counting.runs == 0
    changed = f"oci-dir:{write_oci_layout(tmp_path / 'two', build_image(_layers(version='7')))}"
    other = analyze_image(changed, ImageAccess(), blobs=cache, clock=clock)
    assert counting.runs == 1
    versions = {p.version for p in other.packages if p.type == PackageType.DEB}
    assert "7.3-1" in versions and "1.3-1" not in versions
    assert {p.version for p in again.packages if p.type == PackageType.DEB} >= {"1.3-1"}


def test_every_registered_cataloger_round_trips_its_output(tmp_path: Path) -> None:
    """What a kept entry gives back is what the cataloger made (the packages' JSON round trip)."""
    view = FileResolver.from_files(
        {**debian_files(), **python_files(), "/app/package.json": '{"name":"a","version":"1.0.0"}'}
    )
    memo = memo_at(tmp_path)
    found = {}
    for analyzer in ANALYZERS:
        made = memo.run(analyzer, view, OPTIONS, None)
        kept = memo.run(analyzer, view, OPTIONS, None)
        assert kept == made, analyzer.name
        found[analyzer.name] = [] if made is None else [p.type for p in made.packages]
    assert PackageType.DEB in found["dpkg"] and PackageType.PYTHON in found["python"]
