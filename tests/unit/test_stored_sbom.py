"""Stored SBOM documents: a rescan asking for the same document prints the one stored, verified, and
never one made for another image, source, format, option or analyzer set, nor a damaged one.

The command line answers such a rescan before building itself (``cli.stored_sbom``); anything it does
not answer falls through to the full command line, which prints the same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.cli.stored_sbom import StoredRequest, parse_plain_sbom
from portwarden.core.analyzers.base import AnalyzerOptions
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.image.cache import CACHE_WARNING_PREFIX
from portwarden.core.services.acquire import ImageAccess, resolve_image
from portwarden.core.services.analyze import sbom_document
from portwarden.core.services.stored import stored_sbom_document
from tests.support.ocibuild import build_image, build_layer, file, write_oci_archive, write_oci_layout
from tests.unit.test_result_cache import FailingAnalyzer, layer_blobs

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
    for i in range(30)
)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    app = build_layer([file("app/.env", "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n")])
    image = build_image([base, app])
    write_oci_archive(tmp_path / "image.tar", image)
    return write_oci_layout(tmp_path / "layout", image)


def renderings(cache_root: Path) -> list[Path]:
    return sorted(p for p in (cache_root / "analyses").rglob("*.zst") if not p.name.endswith(".json.zst"))


def document(source: str, blobs: FilesystemBlobStore, fmt: str = "json", **kwargs: object) -> bytes:
    out = io.BytesIO()
    sbom_document(source, ImageAccess(), fmt, blobs=blobs, **kwargs).write(out)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "cyclonedx-json", "spdx-json"])
def test_the_stored_document_is_the_one_printed_first_and_needs_no_layer(
    image_dir: Path, tmp_path: Path, fmt: str
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    source = f"oci-dir:{image_dir}"
    assert stored_sbom_document(source, ImageAccess(), fmt, blobs) is None
    first = document(source, blobs, fmt)
    assert b"pkg-29" in first
    assert len(renderings(tmp_path / "cache")) == 1
    for blob in layer_blobs(image_dir):
        blob.unlink()
    assert stored_sbom_document(source, ImageAccess(), fmt, blobs) == first
    again = sbom_document(source, ImageAccess(), fmt, blobs=blobs)
    assert again.stored == first and again.analysis is None


def test_another_format_source_options_or_analyzer_set_is_not_answered(
    image_dir: Path, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    source = f"oci-dir:{image_dir}"
    document(source, blobs, "json")
    access = ImageAccess()
    assert stored_sbom_document(source, access, "spdx-json", blobs) is None
    archive = f"oci-archive:{tmp_path / 'image.tar'}"
    assert stored_sbom_document(archive, access, "json", blobs) is None
    declared = AnalyzerOptions(include_declared=True)
    assert stored_sbom_document(source, access, "json", blobs, options=declared) is None
    other_set = (*ANALYZERS, FailingAnalyzer())
    assert stored_sbom_document(source, access, "json", blobs, analyzers=other_set) is None
    # The same image from the archive: its own document, naming the archive.
    from_archive = document(archive, blobs, "json")
    assert b'"type": "oci-archive"' in from_archive
    assert stored_sbom_document(archive, access, "json", blobs) == from_archive
    assert len(renderings(tmp_path / "cache")) == 2


def test_a_document_of_a_failed_analysis_is_not_stored(image_dir: Path, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    analyzers = (*ANALYZERS, FailingAnalyzer())
    printed = document(f"oci-dir:{image_dir}", blobs, "json", analyzers=analyzers)
    assert b"always-fails" in printed
    assert renderings(tmp_path / "cache") == []


def _rewrite(path: Path, change: Callable[[bytes], bytes]) -> None:
    data = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(change(data)))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "no matching trailer"),
        (_flip_byte, "unreadable stored"),
        (lambda p: _rewrite(p, lambda d: d.replace(b'"pkg-7"', b'"pkg-X"')), "does not match its digest"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "no matching trailer"),
    ],
    ids=["emptied", "bit-flip", "edited", "truncated"],
)
def test_a_damaged_document_is_never_printed_and_gets_replaced(
    image_dir: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    source = f"oci-dir:{image_dir}"
    first = document(source, blobs)
    (stored,) = renderings(tmp_path / "cache")
    damage(stored)
    assert stored_sbom_document(source, ImageAccess(), "json", blobs) is None
    with caplog.at_level(logging.WARNING):
        second = document(source, blobs)
    assert second == first  # made again from the stored analysis
    assert any(CACHE_WARNING_PREFIX in r.message and reason in r.message for r in caplog.records)
    assert stored_sbom_document(source, ImageAccess(), "json", blobs) == first


def test_a_document_stored_under_another_images_key_is_refused(image_dir: Path, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    source = f"oci-dir:{image_dir}"
    document(source, blobs)
    other = write_oci_layout(
        tmp_path / "other", build_image([build_layer([file("etc/os-release", "ID=alpine\n")])])
    )
    document(f"oci-dir:{other}", blobs)
    digest = resolve_image(source, ImageAccess()).manifest_digest
    (mine,) = [p for p in renderings(tmp_path / "cache") if digest.split(":")[1] in str(p)]
    (theirs,) = [p for p in renderings(tmp_path / "cache") if p != mine]
    # A complete, self-consistent document (trailer and all) copied to this image's place, under this
    # image's name (the source digest in the name differs only by the location).
    shutil.copyfile(theirs, mine)
    assert stored_sbom_document(source, ImageAccess(), "json", blobs) is None


def test_a_document_too_large_to_keep_is_not_stored(image_dir: Path, tmp_path: Path) -> None:
    from portwarden.core.image.cache import AnalysisCache
    from portwarden.core.image.rendering import rendering_id

    blobs = FilesystemBlobStore(tmp_path / "cache")
    cache = AnalysisCache(blobs, "test-key", max_document_bytes=100)
    recorder = cache.record_rendering("sha256:" + "a" * 64, rendering_id("json", b"{}"))
    recorder.write(b"x" * 60)
    recorder.write(b"x" * 60)
    assert recorder.commit() is False
    assert cache.rendering("sha256:" + "a" * 64, rendering_id("json", b"{}")).document is None
    fits = cache.record_rendering("sha256:" + "a" * 64, rendering_id("json", b"{}"))
    fits.write(b"y" * 100)
    assert fits.commit() is True
    assert cache.rendering("sha256:" + "a" * 64, rendering_id("json", b"{}")).document == b"y" * 100


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sbom", "oci-dir:/i", "-o", "json"], StoredRequest("oci-dir:/i", "json")),
        (
            ["-q", "sbom", "--output=spdx-json", "oci-archive:/i.tar"],
            StoredRequest("oci-archive:/i.tar", "spdx-json"),
        ),
        (
            [
                "sbom",
                "docker-archive:/d.tar",
                "-o",
                "cyclonedx-json",
                "--platform",
                "linux/arm64",
                "--include-declared",
                "--secret",
                "A=b+",
                "--secret=C=d",
                "--content",
                "E=f",
                "--retrieve",
                "/etc/hosts",
            ],
            StoredRequest(
                "docker-archive:/d.tar",
                "cyclonedx-json",
                "linux/arm64",
                True,
                ["A=b+", "C=d"],
                ["E=f"],
                ["/etc/hosts"],
            ),
        ),
        (["sbom", "oci-dir:/i"], None),  # the table
        (["sbom", "oci-dir:/i", "-o", "table"], None),
        (["sbom", "registry:alpine", "-o", "json"], StoredRequest("registry:alpine", "json")),
        (["sbom", "alpine:3.20", "-o", "json"], StoredRequest("alpine:3.20", "json")),
        (["sbom", "sbom:/s.json", "-o", "json"], None),  # scanned, not analyzed
        (
            ["sbom", "oci-dir:/i", "-o", "json", "--no-cache"],
            StoredRequest("oci-dir:/i", "json", no_cache=True),
        ),
        (
            ["-q", "sbom", "--no-cache", "registry:alpine", "--output=spdx-json"],
            StoredRequest("registry:alpine", "spdx-json", no_cache=True),
        ),
        (["sbom", "oci-dir:/i", "-o", "json", "--no-cache=1"], None),  # a flag takes no value
        (["sbom", "oci-dir:/i", "--no-cache"], None),  # the table
        (["sbom", "sbom:/s.json", "-o", "json", "--no-cache"], None),
        (["sbom", "oci-dir:/i", "-o", "json", "--cache"], None),
        (["--debug", "sbom", "oci-dir:/i", "-o", "json"], None),
        (["sbom", "oci-dir:/i", "-o", "json", "--help"], None),
        (["sbom", "oci-dir:/i", "oci-dir:/j", "-o", "json"], None),
        (["sbom", "oci-dir:/i", "-ojson"], None),
        (["sbom", "oci-dir:/i", "-o"], None),
        (["sbom", "--", "oci-dir:/i", "-o", "json"], None),
        (["scan", "oci-dir:/i", "-o", "json"], None),
    ],
)
def test_only_plain_sbom_command_lines_are_answered_early(
    argv: list[str], expected: StoredRequest | None
) -> None:
    assert parse_plain_sbom(argv) == expected


def _cli(args: list[str], env: dict[str, str], entry: bool) -> subprocess.CompletedProcess[str]:
    # The console script (entry) tries the stored document first; `-m portwarden.cli.main` never does.
    code = (
        "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
        "finally:\n    sys.stderr.write('typer loaded: %s, command line built: %s'"
        " % ('typer' in sys.modules, 'portwarden.cli.main' in sys.modules))"
        if entry
        else "import sys; from portwarden.cli.main import run; sys.argv[0] = 'portwarden'; run()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.parametrize("fmt", ["json", "cyclonedx-json"])
def test_the_console_script_prints_what_the_full_command_line_prints(
    image_dir: Path, tmp_path: Path, fmt: str
) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    args = ["sbom", f"oci-dir:{image_dir}", "-o", fmt, "--secret", "TOKEN=tok_[a-z]+"]
    first = _cli(args, env, entry=True)
    # Nothing stored yet: analyzed, still without the command line.
    assert first.returncode == 0 and "typer loaded: False" in first.stderr
    for blob in layer_blobs(image_dir):
        blob.unlink()
    early = _cli(args, env, entry=True)
    assert early.returncode == 0 and "typer loaded: False" in early.stderr
    full = _cli(args, env, entry=False)
    assert full.returncode == 0
    assert early.stdout == full.stdout == first.stdout
    # Another option: the full command line (the same stored document).
    debug = _cli(["--debug", *args], env, entry=True)
    assert "typer loaded: True" in debug.stderr and debug.stdout == first.stdout


def _timeless(fmt: str, text: str) -> object:
    """The document without what derives from the time of the analysis."""
    document = json.loads(text)
    if fmt == "json":
        del document["analyzed_at"]
    else:
        del document["serialNumber"], document["metadata"]["timestamp"]
    return document


@pytest.mark.parametrize("fmt", ["json", "cyclonedx-json"])
def test_an_analysis_made_before_the_command_line_is_the_command_lines(
    image_dir: Path, tmp_path: Path, fmt: str
) -> None:
    """A plain request with nothing stored is analyzed by the console script itself: the same
    document, warnings and exit code as the full command line's, damaged layer cache included."""
    args = ["sbom", f"oci-dir:{image_dir}", "-o", fmt, "--retrieve", "/etc/os-release"]
    runs = {}
    for entry in (True, False):
        env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / f"home-{entry}")}
        for variable in ("FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
            env.pop(variable, None)
        assert _cli(args, env, entry=entry).returncode == 0  # fragments cached, the document stored
        # Neither the stored analysis nor the layer stack's entry: the image is assembled again.
        shutil.rmtree(tmp_path / f"home-{entry}" / "cache" / "analyses")
        shutil.rmtree(tmp_path / f"home-{entry}" / "cache" / "stacks", ignore_errors=True)
        for fragment in (tmp_path / f"home-{entry}" / "cache" / "fragments").rglob("*.json.zst"):
            fragment.write_bytes(b"not a fragment")
        runs[entry] = _cli(args, env, entry=entry)
    early, full = runs[True], runs[False]
    assert "typer loaded: False" in early.stderr
    assert early.returncode == full.returncode == 0
    assert _timeless(fmt, early.stdout) == _timeless(fmt, full.stdout)
    warnings, _, _ = early.stderr.partition("typer loaded: ")
    assert warnings == full.stderr
    assert warnings.count("warning: layer cache: ") == 2 and "unreadable fragment" in warnings


def test_an_analysis_error_before_the_command_line_is_the_command_lines(
    image_dir: Path, tmp_path: Path
) -> None:
    """A layer that does not match its digest fails the analysis: one line, exit code 2, as the
    command line says it (the source resolves, so the console script analyzes it itself)."""
    [blob, *_] = [p for p in (image_dir / "blobs" / "sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b"]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    args = ["sbom", f"oci-dir:{image_dir}", "-o", "json"]
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    early = _cli(args, env, entry=True)
    full = _cli(args, env, entry=False)
    assert early.returncode == full.returncode == 2
    assert early.stdout == full.stdout == ""
    said, _, loaded = early.stderr.partition("typer loaded: ")
    assert loaded.endswith("command line built: False")  # the error line's format loads typer only
    assert said == full.stderr
    assert full.stderr.startswith("error: ") and full.stderr.count("\n") == 1


def test_a_terminal_gets_the_command_lines_progress(image_dir: Path, tmp_path: Path) -> None:
    """Where the command line would draw the layers' progress, it runs the analysis itself."""
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home"), "FORCE_TERMINAL": "1"}
    args = ["sbom", f"oci-dir:{image_dir}", "-o", "json"]
    assert "typer loaded: True" in _cli(args, env, entry=True).stderr
    # Stored now: printed without the command line, terminal or not.
    assert "typer loaded: False" in _cli(args, env, entry=True).stderr
    quiet = {**env, "PORTWARDEN_HOME": str(tmp_path / "quiet-home")}
    assert "typer loaded: False" in _cli(["-q", *args], quiet, entry=True).stderr


def test_errors_are_the_full_command_lines(tmp_path: Path) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    missing = _cli(["sbom", f"oci-dir:{tmp_path / 'nothing'}", "-o", "json"], env, entry=True)
    full = _cli(["sbom", f"oci-dir:{tmp_path / 'nothing'}", "-o", "json"], env, entry=False)
    assert missing.returncode == full.returncode == 2
    assert missing.stderr.startswith(full.stderr.strip())
    bad = _cli(["sbom", f"oci-dir:{tmp_path}", "-o", "json", "--secret", "no-equals"], env, entry=True)
    assert bad.returncode == 2 and "NAME=REGEX" in bad.stderr


def test_answering_from_a_stored_document_loads_no_reader_encoder_or_command_line(
    image_dir: Path, tmp_path: Path
) -> None:
    # What the early answer saves is what it does not load: keep it that way.
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    args = ["sbom", f"oci-dir:{image_dir}", "-o", "json"]
    assert _cli(args, env, entry=True).returncode == 0
    heavy = (
        "typer",
        "rich",
        "portwarden.core.image.reader",
        "portwarden.core.services.analyze",
        "portwarden.core.sbom.native",
        "packageurl",
        "sqlite3",
    )
    code = (
        "import sys\nfrom portwarden.cli.stored_sbom import print_stored_sbom\n"
        f"assert print_stored_sbom({args!r})\n"
        f"sys.stderr.write(repr([m for m in {heavy!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert result.stderr == "[]"


def test_a_closed_pipe_is_an_error_exit_like_the_command_lines(image_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    args = ["sbom", f"oci-dir:{image_dir}", "-o", "json"]
    assert _cli(args, env, entry=True).returncode == 0  # stored now
    code = "import sys; from portwarden.cli.entry import run; sys.argv[0] = 'portwarden'; run()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nobody reads: the write fails with EPIPE
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 2
    assert stderr.startswith("error: BrokenPipeError")


def test_an_interrupted_analysis_ends_as_the_command_lines(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C during an analysis the console script makes: no traceback, exit code 130 (typer's)."""
    import portwarden.core.services.analyze as analyze_module
    from portwarden.cli.stored_sbom import answer_plain_sbom

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(analyze_module, "sbom_document", interrupted)
    try:
        answer_plain_sbom(["-q", "sbom", f"oci-dir:{image_dir}", "-o", "json"])
    except BaseException as exc:  # an escaping KeyboardInterrupt must fail this test, not stop the run
        ended: BaseException | None = exc
    else:
        ended = None
    assert isinstance(ended, SystemExit) and ended.code == 130, repr(ended)
    assert capsys.readouterr().out == ""


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: size and modification time (a write shows)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("fmt", ["json", "cyclonedx-json"])
def test_no_cache_is_answered_by_the_console_script_as_the_command_line_answers_it(
    image_dir: Path, tmp_path: Path, fmt: str
) -> None:
    """``--no-cache`` before the command line: the command's document, warnings and exit code; the
    memo, the stored document and the layer fragments of an earlier request are not read (each would
    show: the memo and the stored document print the earlier analysis's time, a damaged fragment
    warns), and nothing is written to the cache."""
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    for variable in ("FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        env.pop(variable, None)
    args = ["sbom", f"oci-dir:{image_dir}", "-o", fmt, "--secret", "TOKEN=tok_[a-z]+"]
    stored = _cli(args, env, entry=True)  # fragments, analysis, document and memo stored
    assert stored.returncode == 0 and "typer loaded: False" in stored.stderr
    cache = tmp_path / "home" / "cache"
    assert list((cache / "analyses" / "requests").glob("*.json")), "the memo was written"
    fragments = list((cache / "fragments").rglob("*.json.zst"))
    assert fragments
    for fragment in fragments:
        fragment.write_bytes(b"not a fragment")
    before = _tree(cache)
    time.sleep(1.0)  # the documents' times are in seconds: an analysis made now shows another one
    early = _cli([*args, "--no-cache"], env, entry=True)
    full = _cli([*args, "--no-cache"], env, entry=False)
    assert early.returncode == full.returncode == 0
    said, _, loaded = early.stderr.partition("typer loaded: ")
    assert loaded == "False, command line built: False"
    assert said == full.stderr == ""  # no word of the damaged fragments: never read
    assert _timeless(fmt, early.stdout) == _timeless(fmt, full.stdout) == _timeless(fmt, stored.stdout)
    assert early.stdout != stored.stdout  # analyzed now: another time than the stored document's
    assert _tree(cache) == before  # nothing stored, no memo written


def test_no_cache_touches_no_blob_store(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process: a ``--no-cache`` answer makes no blob store at all (nothing to read or write),
    while the same request without it does."""
    from portwarden.cli.stored_sbom import answer_plain_sbom

    made: list[Path] = []
    original = FilesystemBlobStore.__init__

    def spying_init(self: FilesystemBlobStore, root: Path) -> None:
        made.append(root)
        original(self, root)

    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(FilesystemBlobStore, "__init__", spying_init)
    args = ["-q", "sbom", f"oci-dir:{image_dir}", "-o", "json"]
    assert answer_plain_sbom([*args, "--no-cache"])
    uncached = capsys.readouterr().out
    assert made == [] and b"pkg-29" in uncached.encode()
    assert not (tmp_path / "home" / "cache").exists()
    assert answer_plain_sbom(args)
    assert made and _timeless("json", capsys.readouterr().out) == _timeless("json", uncached)


def test_no_cache_errors_are_the_command_lines(image_dir: Path, tmp_path: Path) -> None:
    """A layer that does not match its digest, a missing layout, a malformed reference: with
    ``--no-cache`` the same line and exit code as the command line's, from the console script (a
    registry's errors: tests/integration/test_registry_sbom_early_answer.py)."""
    [blob, *_] = [p for p in (image_dir / "blobs" / "sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b"]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    for source in (f"oci-dir:{image_dir}", f"oci-dir:{tmp_path / 'nothing'}", "Team/App!:1.0"):
        args = ["-q", "sbom", source, "-o", "json", "--no-cache"]
        early = _cli(args, env, entry=True)
        full = _cli(args, env, entry=False)
        assert early.returncode == full.returncode == 2, (source, early.stderr)
        assert early.stdout == full.stdout == ""
        said, _, loaded = early.stderr.partition("typer loaded: ")
        assert loaded.endswith("command line built: False")
        assert said == full.stderr and full.stderr.startswith("error: ")
    assert not (tmp_path / "home" / "cache").exists()


@pytest.mark.parametrize("source", ["oci-dir", "oci-archive"])
def test_without_a_terminal_the_image_is_resolved_once_per_answer(
    image_dir: Path,
    tmp_path: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No progress to draw: the analysis and the stored document are both answered after resolving
    the image once (``sbom_document`` looks the stored document up itself), and a rescan prints the
    document the analysis printed. An archive has no request memo, so its rescan takes that way too."""
    from portwarden.cli import stored_sbom
    from portwarden.core.image.sources import OciLayoutSource

    resolutions: list[str] = []
    original = OciLayoutSource.resolve

    def counting(self: OciLayoutSource, platform: object) -> object:
        resolutions.append(source)
        return original(self, platform)  # type: ignore[arg-type]

    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(OciLayoutSource, "resolve", counting)
    monkeypatch.setattr(stored_sbom, "_progress_may_show", lambda: False)
    target = f"oci-dir:{image_dir}" if source == "oci-dir" else f"oci-archive:{tmp_path / 'image.tar'}"
    args = ["sbom", target, "-o", "json"]
    assert stored_sbom.answer_plain_sbom(args)
    analyzed = capsys.readouterr().out
    assert resolutions == [source] and b"pkg-29" in analyzed.encode()
    shutil.rmtree(tmp_path / "home" / "cache" / "analyses" / "requests", ignore_errors=True)  # no memo
    assert stored_sbom.answer_plain_sbom(args)
    assert capsys.readouterr().out == analyzed  # the stored document, byte for byte
    assert resolutions == [source, source]
