"""``portwarden sbom`` for its plain forms, answered before the command line is built.

A rescan of an image already analyzed prints the document stored by the identical earlier request
(``core.services.stored``). Building the command line (typer, click, rich, every command's options)
costs more than that answer, and a good part of an analysis whose layers are all cached, so the
console script handles the plain forms of the command itself:

    portwarden [-q|--quiet] sbom SOURCE [-o|--output FORMAT] [--platform P] [--include-declared]
               [--secret NAME=REGEX]... [--content NAME=REGEX]... [--retrieve PATH]... [--no-cache]

with FORMAT one of the documents (not the table) and an image source (a layout, an archive or a
registry): the stored document when there is one, else the analysis, through the very service function
the command calls, with the command's warnings, error lines and exit codes (``cli.context.fail_for``).
A repeated request is first looked up in its memo: ``cli.request_memo`` for a layout directory,
``cli.registry_memo`` for a registry image (answered once the registry has answered the same again).
With ``--no-cache`` the cache is neither read nor written, as by the command: no memo, no stored
document, the analysis made by ``sbom_document`` without a blob store (every layer read, nothing
stored). Anything else (another option, ``--help``, ``--debug``, an ``sbom:`` source, a malformed
pattern, a terminal that would show the progress bar) answers nothing here and the full command line
runs. A registry's error (refused credentials, a missing tag, a timeout) is reported
here, as the command line reports it, rather than by asking the registry a second time. The options
are turned into analyzer options by the same function the command uses, so both look up the same
entry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portwarden.cli.registry_memo import FetchRecorder
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.analyzers.base import AnalyzerOptions
    from portwarden.core.image.replay import StoredAnswer
    from portwarden.core.model.analysis import ImageAnalysis
    from portwarden.core.ports import BlobStore
    from portwarden.core.services.acquire import ImageAccess

DOCUMENT_FORMATS = frozenset({"json", "cyclonedx-json", "spdx-json"})
_LOCAL_SOURCES = ("oci-dir:", "oci-archive:", "docker-archive:")
# An SBOM given as the source is scanned, not analyzed: the full command line says so.
_NOT_ANSWERED = ("sbom:",)
_REPEATABLE = {"--secret": "secret", "--content": "content", "--retrieve": "retrieve"}


def named_patterns(values: Sequence[str]) -> dict[str, str]:
    """``NAME=REGEX`` values as a mapping; ``ValueError`` names the value that is not one."""
    patterns: dict[str, str] = {}
    for value in values:
        name, sep, regex = value.partition("=")
        if not sep or not name or not regex:
            raise ValueError(f"expected NAME=REGEX, got {value!r}")
        patterns[name] = regex
    return patterns


def sbom_options(
    settings: LocalSettings,
    *,
    include_declared: bool,
    secret: Sequence[str],
    content: Sequence[str],
    retrieve: Sequence[str],
) -> AnalyzerOptions:
    """The analyzer options of ``portwarden sbom`` (``ValueError`` for a malformed pattern)."""
    from portwarden.core.analyzers.base import AnalyzerOptions, merge_retrieve_files

    return AnalyzerOptions(
        include_declared=include_declared,
        secret_patterns=named_patterns(secret),
        content_patterns=named_patterns(content),
        retrieve_files=merge_retrieve_files(settings.retrieve_files, retrieve),
    )


@dataclass
class StoredRequest:
    """A plain ``sbom`` command line, parsed."""

    source: str
    output: str
    platform: str | None = None
    include_declared: bool = False
    secret: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    retrieve: list[str] = field(default_factory=list)
    # ``--no-cache``: no cached fragment, stored analysis or stored document read, nothing stored.
    no_cache: bool = False

    @property
    def from_registry(self) -> bool:
        """Whether the source is an image in a registry (``SourceSpec.parse``'s reading, without it)."""
        return not self.source.startswith(_LOCAL_SOURCES)


def parse_plain_sbom(args: Sequence[str]) -> StoredRequest | None:
    """The request, when ``args`` is a plain ``sbom`` command line asking for a document; else None."""
    position = 0
    while position < len(args) and args[position] in ("-q", "--quiet"):
        position += 1
    if position >= len(args) or args[position] != "sbom":
        return None
    source: str | None = None
    output = "table"
    platform: str | None = None
    include_declared = False
    no_cache = False
    repeated: dict[str, list[str]] = {"secret": [], "content": [], "retrieve": []}
    rest = list(args[position + 1 :])
    while rest:
        argument = rest.pop(0)
        name, equals, inline = argument.partition("=") if argument.startswith("--") else (argument, "", "")
        if argument == "--include-declared":
            include_declared = True
            continue
        if argument == "--no-cache":
            no_cache = True
            continue
        if name in ("-o", "--output", "--platform", *_REPEATABLE):
            if equals:
                value = inline
            elif rest:
                value = rest.pop(0)
            else:
                return None
            if name in ("-o", "--output"):
                output = value
            elif name == "--platform":
                platform = value
            else:
                repeated[_REPEATABLE[name]].append(value)
            continue
        if argument.startswith("-") or source is not None:
            return None  # an option of the full command line, or a second argument
        source = argument
    if source is None or output not in DOCUMENT_FORMATS or source.startswith(_NOT_ANSWERED):
        return None
    return StoredRequest(
        source=source,
        output=output,
        platform=platform,
        include_declared=include_declared,
        secret=repeated["secret"],
        content=repeated["content"],
        retrieve=repeated["retrieve"],
        no_cache=no_cache,
    )


def print_stored_sbom(args: Sequence[str]) -> bool:
    """Print the stored document for this command line and return True; False when there is none to
    print (nothing has been written then, and the full command line takes over)."""
    request = parse_plain_sbom(args)
    if request is None or request.no_cache:
        return False
    document = _remembered(request)
    if document is not None:
        _write_stored(document)
        return True
    try:
        wiring = _Wiring.of(request)
        found = _stored_answer(wiring)
    except Exception:  # any problem is the full command line's to report
        return False
    if found is None:
        return False
    _write_stored(found[0])
    _remember(wiring, found[1])
    return True


def answer_plain_sbom(args: Sequence[str]) -> bool:
    """Answer a plain ``sbom`` command line (the stored document, else the analysis) and return True;
    False, having written nothing, when the full command line is to run it."""
    request = parse_plain_sbom(args)
    if request is None:
        return False
    if request.no_cache:
        return _analyze_uncached(request, args)
    document = _remembered(request)
    if document is not None:
        _write_stored(document)
        return True
    from_registry = request.from_registry
    if from_registry and not _quiet(args) and _progress_may_show():
        return False  # the command line draws the downloads' progress on a terminal
    if not from_registry and (_quiet(args) or not _progress_may_show()) and _replayed(request):
        return True  # a new image on cached layers, made from what earlier analyses kept
    try:
        wiring = _Wiring.of(request)
    except Exception:  # a malformed pattern, a bad setting: the full command line's to report
        return False
    if _quiet(args) or not _progress_may_show():
        # No progress to draw whatever the answer: ``sbom_document`` looks the stored document up
        # itself, so the image is resolved once, and its errors are reported as the command's.
        _analyze_and_print(wiring)
        return True
    try:
        found = _stored_answer(wiring)
    except Exception as exc:
        if not from_registry:
            return False  # the full command line reports it (a local source costs nothing to read again)
        # A registry's answer (refused credentials, a missing tag, a timeout) is reported as the
        # command line reports it, rather than asking the registry a second time.
        from portwarden.cli.context import fail_for

        fail_for(exc, debug=False)
    if found is not None:
        _write_stored(found[0])
        _remember(wiring, found[1])
        return True
    return False  # a new analysis: the command line draws the layers' progress on the terminal


def _analyze_uncached(request: StoredRequest, args: Sequence[str]) -> bool:
    """``--no-cache``: the analysis, as the command makes it (no blob store: nothing of the cache read,
    nothing stored), and no memo looked up or written."""
    if not _quiet(args) and _progress_may_show():
        return False  # the command line draws the progress on a terminal
    try:
        wiring = _Wiring.of(request)
    except Exception:  # a malformed pattern, a bad setting: the full command line's to report
        return False
    _analyze_and_print(wiring)
    return True


def _remembered(request: StoredRequest) -> bytes | None:
    """The document the memo of this request names (``cli.request_memo`` for a layout directory,
    ``cli.registry_memo`` for a registry image), or None."""
    try:
        if request.from_registry:
            from portwarden.cli import registry_memo

            return registry_memo.remembered_document(request)
        from portwarden.cli import request_memo

        return request_memo.remembered_document(request)
    except Exception:  # a memo that cannot be read is a miss: the request goes the full way
        return None


def _replayed(request: StoredRequest) -> bool:
    """``cli.replay``'s answer to ``request``: True when it printed the document."""
    try:
        from portwarden.cli import replay

        return replay.replayable(request) and replay.replayed_answer(request)
    except Exception:  # nothing printed (it prints last): the full path answers and reports
        return False


def _remember(wiring: _Wiring, answer: StoredAnswer | None) -> None:
    try:
        if wiring.recorder is not None:
            from portwarden.cli import registry_memo

            registry_memo.remember(wiring.request, wiring.recorder, answer)
            return
        from portwarden.cli import request_memo

        request_memo.remember(wiring.request, answer)
    except Exception:  # best effort: without a memo the next request goes the full way
        return


def _quiet(args: Sequence[str]) -> bool:
    return bool(args) and args[0] in ("-q", "--quiet")


def _progress_may_show() -> bool:
    """Whether the command line could draw a progress bar (rich's terminal detection, or more)."""
    forced = ("FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR")
    return sys.stderr.isatty() or any(name in os.environ for name in forced)


def _write_stored(document: bytes) -> None:
    try:
        out = sys.stdout.buffer
        out.write(document)
        out.write(b"\n")
        out.flush()
    except OSError as exc:  # a closed pipe: reported as the command line reports it (exit code 2)
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        sys.exit(2)


@dataclass
class _Wiring:
    """What both answers need: the request, its analyzer options, the image access and the cache."""

    request: StoredRequest
    options: AnalyzerOptions
    access: ImageAccess
    blobs: BlobStore | None  # None with ``--no-cache``, as the command passes it
    # What resolving a registry image fetched, for its memo (``cli.registry_memo``).
    recorder: FetchRecorder | None = None

    @classmethod
    def of(cls, request: StoredRequest) -> _Wiring:
        from portwarden.adapters.local.blobs import FilesystemBlobStore
        from portwarden.cli.settings import LocalSettings
        from portwarden.cli.wiring import registry_clients
        from portwarden.core.services.acquire import ImageAccess

        settings = LocalSettings()
        options = sbom_options(
            settings,
            include_declared=request.include_declared,
            secret=request.secret,
            content=request.content,
            retrieve=request.retrieve,
        )
        recorder = None
        clients = None
        if request.from_registry:
            clients = registry_clients(settings)
            if not request.no_cache:
                # Loaded for a registry image only (a layout's answer has no fetches to record).
                from portwarden.cli.registry_memo import FetchRecorder

                recorder = FetchRecorder()
                clients = recorder.wrap(clients)
        access = ImageAccess(
            limits=settings.safety_limits(), work_dir=settings.work_dir, registry_client=clients
        )
        blobs = None if request.no_cache else FilesystemBlobStore(settings.home / "cache")
        return cls(request, options, access, blobs, recorder)


def _stored_answer(wiring: _Wiring) -> tuple[bytes, StoredAnswer | None] | None:
    from portwarden.core.services.stored import stored_sbom_answer

    request = wiring.request
    if wiring.blobs is None:  # pragma: no cover - a --no-cache request is never looked up
        raise AssertionError("a stored answer looked up without the cache")
    return stored_sbom_answer(
        request.source,
        wiring.access,
        request.output,
        wiring.blobs,
        options=wiring.options,
        platform=request.platform,
    )


def cache_warning_lines(analysis: ImageAnalysis) -> list[str]:
    """What the command says before the document when the layer cache was damaged (the affected
    layers were read again)."""
    from portwarden.core.image.rendering import CACHE_WARNING_PREFIX

    return [f"warning: {w}" for w in analysis.warnings if w.startswith(CACHE_WARNING_PREFIX)]


def failure_lines(analysis: ImageAnalysis) -> list[str]:
    """What the command says after the document about analyzers that failed."""
    return [f"warning: analyzer {run.name} failed: {run.error}" for run in analysis.analyzers if run.error]


def _say(lines: list[str]) -> None:
    if lines:  # rich is loaded for the command line's own message format only when there is one
        from portwarden.cli.output import message

        for line in lines:
            message(line)


def _analyze_and_print(wiring: _Wiring) -> None:
    """``sbom_document`` and its printing, as ``commands_sbom.sbom`` does them; an error is reported
    as the command line reports it (one line, exit code 2)."""
    from portwarden.cli import replay, request_memo
    from portwarden.core.services.analyze import sbom_document

    request = wiring.request
    # What the next request like this one, on another image on these layers, answers from.
    phase_stamp = request_memo.installed_code_stamp() if replay.replayable(request) else None
    try:
        document = sbom_document(
            request.source,
            wiring.access,
            request.output,
            options=wiring.options,
            blobs=wiring.blobs,
            platform=request.platform,
            phase_stamp=phase_stamp,
        )
        analysis = document.summary  # its warnings and analyzer runs (the entries are not needed)
        if analysis is not None:
            _say(cache_warning_lines(analysis))
        # Bytes straight to stdout: a large document is never held whole as text.
        sys.stdout.flush()
        stored = document.write(sys.stdout.buffer)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        sys.exit(130)  # as the command line ends on an interrupt: no traceback, exit code 130
    except Exception as exc:
        from portwarden.cli.context import fail_for

        fail_for(exc, debug=False)
    if analysis is not None:
        _say(failure_lines(analysis))
    if stored and not request.no_cache:
        _remember(wiring, document.answer)
        try:
            replay.keep_plan(wiring)
        except Exception:  # best effort: without a plan the next request goes the full way
            return
