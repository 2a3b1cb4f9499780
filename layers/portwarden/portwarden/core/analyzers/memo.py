"""Cataloger results kept for the next view that gives a cataloger the same answers.

A cataloger (an image-level analyzer) reads the squashed view only through its ``FileResolver``
(DESIGN §4 rule 6), so what it finds is a function of its version, the options, the distro and the
answers the view gives it. Run through a ``TracingResolver``, a cataloger leaves the questions it
asked, in order, each with a digest of the answer. The next analysis asks its own view the same
questions; when every answer is the same, the cataloger would ask nothing else and find the same
packages, so the output kept with the questions is the answer, and the cataloger does not run: the
dpkg database of a base image is parsed once however many images are built on it, and a base image
analyzed after an image built on it finds its catalogers' results kept already.

What an answer is, is exact: a record is all its fields (path, type, mode, owner, size, sha256,
link target, layer); a read is the record the path leads to and whether its content was captured
(a content is named by its sha256); a listing is every record in it. Shared selections
(``FileResolver.selection``) are asked again by name, so only those registered with
``resolver.register_selection`` are replayable; a cataloger that uses another is run every time.

Entries are keyed by everything the questions do not cover (the result cache's key: analyzer set,
options, limits, schema and release; the cataloger's name and version; the options; the distro) and
by the first question and its answer, which a probe run finds: the cataloger is started on a view
that stops it at its first question. Read back, an entry must be a checksummed zstd frame naming its
own key, with well-formed questions; anything else is a miss (the cataloger runs, and the entry is
replaced). A cataloger that raises, or does not apply, keeps nothing. The store is the result
cache's (``BlobStore``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

import zstandard

from portwarden.core.analyzers.base import Analyzer, AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.questions import Step, answer_digest
from portwarden.core.errors import StoreError
from portwarden.core.image.resolver import FileResolver, registered_selection
from portwarden.core.model.distro import Distro
from portwarden.core.model.files import FileRecord
from portwarden.core.replay.phase import read_framed, still_answered

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

logger = logging.getLogger(__name__)

MEMO_FORMAT = 1
# An entry larger than this is neither stored nor read (a cataloger's packages with their owned files
# are a few megabytes on the largest images).
MAX_ENTRY_BYTES = 64 << 20
# The output members assemble uses (``data`` and ``secrets`` of an image-level analyzer are not).
_KEPT_OUTPUT = {"packages", "distro", "warnings"}


def run_cataloger(
    analyzer: Analyzer, view: FileResolver, options: AnalyzerOptions, distro: Distro | None
) -> AnalyzerOutput | None:
    """What ``analyzer`` finds in ``view``; None when it does not apply."""
    if not analyzer.applies(view):
        return None
    return analyzer.analyze(AnalyzerContext(resolver=view, options=options, distro=distro))


class _FirstQuestion(BaseException):
    """Stops a probe run at its first question (a BaseException: ``except Exception`` in a
    cataloger does not swallow it)."""


class TracingResolver(FileResolver):
    """The view it wraps, answering the same, that writes down each question and its answer's digest.

    ``probing``: stop the caller (``_FirstQuestion``) at the first question, once it is written down.
    ``replayable`` turns false when a question cannot be asked again by name (an unregistered
    selection). Every public method of ``FileResolver`` is overridden (a test holds it to that): one
    left to the base class would read attributes this class never sets, and fail rather than answer
    untraced.
    """

    def __init__(self, view: FileResolver, *, probing: bool = False) -> None:
        # The base class's state is not set up: every question goes to ``view``.
        self._view = view
        self._probing = probing
        self.steps: list[Step] = []
        self.replayable = True

    def _note(self, question: str, argument: str) -> None:
        self.steps.append((question, argument, answer_digest(self._view, question, argument)))
        if self._probing:
            raise _FirstQuestion

    def lstat(self, path: str) -> FileRecord | None:
        self._note("lstat", path)
        return self._view.lstat(path)

    def stat(self, path: str) -> FileRecord | None:
        self._note("stat", path)
        return self._view.stat(path)

    def exists(self, path: str) -> bool:
        self._note("stat", path)
        return self._view.exists(path)

    def realpath(self, path: str) -> str | None:
        self._note("realpath", path)
        return self._view.realpath(path)

    def open(self, path: str) -> BinaryIO:
        self._note("content", path)
        return self._view.open(path)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        self._note("content", path)
        return self._view.read_bytes(path, limit)

    def read_text(self, path: str, limit: int | None = None) -> str:
        self._note("content", path)
        return self._view.read_text(path, limit)

    def has_content(self, path: str) -> bool:
        self._note("content", path)
        return self._view.has_content(path)

    def glob(self, pattern: str) -> Iterator[FileRecord]:
        self._note("glob", pattern)
        return self._view.glob(pattern)

    def walk(self, top: str = "/") -> Iterator[FileRecord]:
        self._note("walk", top)
        return self._view.walk(top)

    def records(self) -> Iterable[FileRecord]:
        self._note("records", "")
        return self._view.records()

    def sorted_paths(self) -> Sequence[str]:
        self._note("paths", "")
        return self._view.sorted_paths()

    def paths_by_name(self) -> Mapping[str, list[str]]:
        self._note("names", "")
        return self._view.paths_by_name()

    def selection(
        self, name: str, select: Callable[[FileResolver], Iterable[FileRecord]]
    ) -> tuple[FileRecord, ...]:
        # A name stands for one selection (the view shares its answer by name alone).
        if registered_selection(name) is not None:
            self._note("selection", name)
        else:  # answered, but the next view could not be asked it again
            self.replayable = False
            if self._probing:
                raise _FirstQuestion
        return self._view.selection(name, select)

    def record(self, path: str) -> FileRecord | None:
        self._note("record", path)
        return self._view.record(path)

    def __len__(self) -> int:
        self._note("count", "")
        return len(self._view)


class CatalogerMemo:
    """Cataloger outputs by the questions that produced them (see the module docstring).

    With a ``phase_stamp`` (the code and settings it runs with, from the front end), it also notes
    every question of the catalogers' phase, ``applies`` included, for ``keep_phase``
    (``core.replay.phase``): a view that starts a phase (``start_phase``) is traced until
    ``keep_phase`` or a question that cannot be asked again.
    """

    def __init__(self, blobs: BlobStore, result_key: str, phase_stamp: str | None = None) -> None:
        self._blobs = blobs
        self._result_key = result_key
        self._phase_stamp = phase_stamp
        self._phase_key: str | None = None
        self._phase_steps: list[Step] = []

    def start_phase(self, view: FileResolver) -> None:
        """Note the questions the catalogers ask ``view`` from now on (with a ``phase_stamp``)."""
        self._phase_steps = []
        self._phase_key = None
        if self._phase_stamp is not None:
            from portwarden.core.replay.phase import phase_key

            self._phase_key = phase_key(self._phase_stamp, self._result_key, view)

    def keep_phase(self, members: Mapping[str, bytes], warnings: Sequence[str]) -> None:
        """Keep the phase noted since ``start_phase`` with the members it made and the catalogers'
        warnings (nothing when a question could not be noted, or no phase was started)."""
        if self._phase_key is not None:
            from portwarden.core.replay.phase import write_phase

            write_phase(self._blobs, self._phase_key, self._phase_steps, members, warnings)
        self._phase_key = None

    def _note(self, tracer: TracingResolver) -> None:
        if not tracer.replayable:
            self._phase_key = None  # a question that cannot be asked again: no phase to keep
        self._phase_steps.extend(tracer.steps)

    def run(
        self, analyzer: Analyzer, view: FileResolver, options: AnalyzerOptions, distro: Distro | None
    ) -> AnalyzerOutput | None:
        """``run_cataloger``'s answer: the one kept for these answers, else the cataloger's (kept)."""
        noting = self._phase_key is not None
        try:
            return self._run(analyzer, view, options, distro, noting)
        except BaseException:
            self._phase_key = None  # the phase did not finish: nothing of it is kept
            raise

    def _run(
        self,
        analyzer: Analyzer,
        view: FileResolver,
        options: AnalyzerOptions,
        distro: Distro | None,
        noting: bool,
    ) -> AnalyzerOutput | None:
        # One that does not apply keeps nothing (below): asked first, without a probe, it costs no
        # key or lookup (most catalogers of an image do not apply to it; what ``applies`` looks at
        # is a shared selection, found once for the traced run that follows when it does apply).
        # Its questions are noted for the phase.
        if noting:
            asked = TracingResolver(view)
            applies = analyzer.applies(asked)
            self._note(asked)
        else:
            applies = analyzer.applies(view)
        if not applies:
            return None
        probe = TracingResolver(view, probing=True)
        with contextlib.suppress(_FirstQuestion):
            run_cataloger(analyzer, probe, options, distro)
        if not probe.replayable:  # its first question cannot be asked again: nothing to look up or keep
            self._phase_key = None
            return run_cataloger(analyzer, view, options, distro)
        first = probe.steps[0] if probe.steps else None
        key = self._key(analyzer, options, distro, first)
        kept = self._read(key)
        if kept is not None and still_answered(view, kept[0]):
            self._phase_steps.extend(kept[0])
            return kept[1]
        tracer = TracingResolver(view)
        output = run_cataloger(analyzer, tracer, options, distro)
        self._note(tracer)
        # One that does not apply is not kept: asking its questions again costs what running it does.
        if output is not None and tracer.replayable and (tracer.steps[0] if tracer.steps else None) == first:
            self._write(key, tracer.steps, output)
        return output

    def _key(
        self, analyzer: Analyzer, options: AnalyzerOptions, distro: Distro | None, first: Step | None
    ) -> str:
        # The options are in the result cache's key too; named here as well, the key does not rest on
        # the caller passing the options that key was made with.
        shape = [
            MEMO_FORMAT,
            self._result_key,
            analyzer.name,
            analyzer.version,
            options.model_dump(mode="json"),
            None if distro is None else distro.model_dump(mode="json"),
            first,
        ]
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _blob_key(key: str) -> str:
        return f"catalogers/{key}.json.zst"

    def _read(self, key: str) -> tuple[list[Step], AnalyzerOutput] | None:
        try:
            raw = self._blobs.get(self._blob_key(key))
            if raw is None:
                return None
            # The frame states its size (``_write`` has it written): checked before it is inflated.
            framed = read_framed(raw, MAX_ENTRY_BYTES)
            if framed is None:
                logger.info("cataloger memo %s unusable: no size, too large or no header", key)
                return None
            header, body = framed
            steps = header["steps"]
            if header.get("format") != MEMO_FORMAT or header.get("key") != key or not isinstance(steps, list):
                return None
            questions = [
                (q, a, d)
                for q, a, d in steps
                if isinstance(q, str) and isinstance(a, str) and isinstance(d, str)
            ]
            if len(questions) != len(steps):
                return None
            return questions, AnalyzerOutput.model_validate_json(body)
        except Exception as exc:  # a damaged entry costs a run, never an analysis
            logger.info("cataloger memo %s unusable: %s", key, exc)
            return None

    def _write(self, key: str, steps: list[Step], output: AnalyzerOutput) -> None:
        # A header line (format, key, questions), then the output as pydantic encodes it (validated
        # from its JSON when read: no dictionary of the packages is built either way).
        header = json.dumps({"format": MEMO_FORMAT, "key": key, "steps": steps}, separators=(",", ":"))
        kept = output.model_dump_json(include=_KEPT_OUTPUT).encode()
        data = b"%s\n%s" % (header.encode(), kept)
        if len(data) > MAX_ENTRY_BYTES:
            return
        try:
            self._blobs.put(
                self._blob_key(key), zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)
            )
        except StoreError as exc:  # the next analysis runs the cataloger again
            logger.warning("could not keep the results of a cataloger: %s", exc)
