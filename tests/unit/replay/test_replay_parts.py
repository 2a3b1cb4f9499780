"""The parts of the answer made without the models: they load no model, their encodings are pydantic's
byte for byte, the kept phase is read back only when sound, and a phase is kept only when every
question of it can be asked again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.memo import CatalogerMemo
from portwarden.core.image.content import ContentStore
from portwarden.core.image.resolver import FileResolver
from portwarden.core.image.stacks import STORED_PACKAGES
from portwarden.core.model.analysis import (
    AnalysisSource,
    AnalyzerRun,
    ContentMatch,
    ImageAnalysis,
    RetrievedFile,
    SecretFinding,
)
from portwarden.core.model.files import FileRecord, FileType
from portwarden.core.replay import phase
from portwarden.core.replay.encode import compact, member
from portwarden.core.sbom.native import native_members

PURE_MODULES = (
    "portwarden.core.replay.answer",
    "portwarden.core.replay.layout",
    "portwarden.core.replay.phase",
    "portwarden.core.replay.encode",
    "portwarden.cli.replay",
    "portwarden.cli.stored_sbom",
    "portwarden.core.image.layer_cache",
    "portwarden.core.image.squash",
    "portwarden.core.image.retrieve",
    "portwarden.core.analyzers.questions",
    "portwarden.core.analyzers.globs",
    "portwarden.core.analyzers.binary.candidates",
)


def test_the_path_loads_no_model_library() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {PURE_MODULES!r}:\n    importlib.import_module(name)\n"
        "from portwarden.core.analyzers.questions import selection_named\n"
        "assert selection_named('candidate-binaries') is not None\n"
        "assert selection_named('evidence:**/METADATA') is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


ODD = 'quote " backslash \\ newline \n nul \x00 unit \x1f del \x7f é \u2028 \U0001f600'


def test_the_members_encoded_here_are_pydantics() -> None:
    analysis = ImageAnalysis(
        source=AnalysisSource(
            type="oci-dir",
            location=ODD,
            manifest_digest="sha256:" + "a" * 64,
            config_digest="c",
            platform="p",
        ),
        secrets=(SecretFinding(path=ODD, line=3, name="aws", layer_digest="sha256:" + "b" * 64),),
        content_matches=(ContentMatch(path="/x", line=1, name=ODD),),
        retrieved_files=(
            RetrievedFile(path="/etc/passwd", sha256=None, size=0, truncated=True, content_b64=""),
        ),
        analyzers=(AnalyzerRun(name="dpkg", version=3),),
        warnings=(ODD, ""),
        analyzed_at=None,
    )
    expected = native_members(
        analysis, ["source", "secrets", "content_matches", "retrieved_files", "warnings"]
    )
    assert member("source", analysis.source.model_dump()) == expected["source"]
    assert compact(analysis.source.model_dump()) == analysis.source.model_dump_json().encode()
    for name in ("secrets", "content_matches", "retrieved_files", "warnings"):
        assert (
            member(
                name,
                [item if isinstance(item, str) else item.model_dump() for item in getattr(analysis, name)],
            )
            == (expected[name])
        ), name
    empty = native_members(ImageAnalysis.model_construct(), ["secrets", "warnings"])
    assert member("secrets", []) == empty["secrets"] and member("warnings", []) == empty["warnings"]
    with pytest.raises(TypeError):
        member("x", {"size": 1.5})


def test_the_phase_members_are_the_native_documents() -> None:
    assert phase.PHASE_MEMBERS == ("distro", "packages", STORED_PACKAGES, "analyzers")


def _view() -> FileResolver:
    records = {
        "/etc": FileRecord("/etc", FileType.DIRECTORY, 0o755),
        "/etc/os-release": FileRecord("/etc/os-release", FileType.FILE, 0o644, size=3, sha256="a" * 64),
    }
    return FileResolver(records, ContentStore())


MEMBERS = {name: f'  "{name}": []'.encode() for name in phase.PHASE_MEMBERS}


def test_a_kept_phase_reads_back_once_per_question_and_only_when_sound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = FilesystemBlobStore(tmp_path)
    view = _view()
    key = phase.phase_key("stamp", "result", view)
    steps = [("stat", "/etc/os-release", "d1"), ("count", "", "d2"), ("stat", "/etc/os-release", "d1")]
    phase.write_phase(blobs, key, steps, MEMBERS, ["dpkg: odd"])
    kept = phase.read_phase(blobs, key)
    assert kept is not None
    assert kept.steps == [("stat", "/etc/os-release", "d1"), ("count", "", "d2")]
    assert kept.members == MEMBERS and kept.warnings == ["dpkg: odd"]
    assert phase.read_phase(blobs, phase.phase_key("other stamp", "result", view)) is None
    [entry] = tmp_path.rglob("*.json.zst")
    sound = entry.read_bytes()
    monkeypatch.setattr(phase, "MAX_PHASE_BYTES", zstandard.frame_content_size(sound) - 1)
    assert phase.read_phase(blobs, key) is None
    monkeypatch.undo()
    data = zstandard.ZstdDecompressor().decompress(sound)
    for damaged in (
        data[:-1],
        data + b"x",
        data.replace(b'"d2"', b"2"),
        data.replace(key.encode(), b"k" * 64),
    ):
        entry.write_bytes(zstandard.ZstdCompressor().compress(damaged))
        assert phase.read_phase(blobs, key) is None
    entry.write_bytes(zstandard.ZstdCompressor(write_content_size=False).compress(data))
    assert phase.read_phase(blobs, key) is None


class _UnregisteredSelection:
    """Applies by a selection no module registered: it cannot be asked again by name."""

    name: ClassVar[str] = "unregistered"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()

    def applies(self, resolver: FileResolver) -> bool:
        return bool(resolver.selection("not-registered-anywhere", lambda view: list(view.records())))

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        return AnalyzerOutput()


class _Plain:
    name: ClassVar[str] = "plain"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()

    def applies(self, resolver: FileResolver) -> bool:
        return resolver.exists("/etc/os-release")

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        context.resolver.stat("/etc")
        return AnalyzerOutput()


@pytest.mark.parametrize("analyzers", [(_Plain(),), (_Plain(), _UnregisteredSelection())])
def test_a_phase_is_kept_only_when_every_question_can_be_asked_again(
    tmp_path: Path, analyzers: tuple[object, ...]
) -> None:
    blobs = FilesystemBlobStore(tmp_path)
    memo = CatalogerMemo(blobs, "result", phase_stamp="stamp")
    view = _view()
    memo.start_phase(view)
    for analyzer in analyzers:
        memo.run(analyzer, view, AnalyzerOptions(), None)  # type: ignore[arg-type]
    memo.keep_phase(MEMBERS, [])
    kept = phase.read_phase(blobs, phase.phase_key("stamp", "result", view))
    if len(analyzers) == 1:
        assert kept is not None and ("stat", "/etc/os-release", kept.steps[0][2]) == kept.steps[0]
        assert [question for question, _, _ in kept.steps] == ["stat", "stat"]
        assert phase.still_answered(view, kept.steps)
        etc = view.record("/etc")
        assert etc is not None
        assert not phase.still_answered(FileResolver({"/etc": etc}, ContentStore()), kept.steps)
    else:
        assert kept is None


def test_without_a_stamp_no_phase_is_noted(tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path)
    memo = CatalogerMemo(blobs, "result")
    view = _view()
    memo.start_phase(view)
    memo.run(_Plain(), view, AnalyzerOptions(), None)  # type: ignore[arg-type]
    memo.keep_phase(MEMBERS, [])
    assert not (tmp_path / "catalogers" / "phases").exists()
