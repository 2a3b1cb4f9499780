"""The questions a cataloger asks its view, and their answers as compared between views.

A cataloger reads the squashed view only through its ``FileResolver`` (DESIGN §4 rule 6): what it
finds is a function of the answers it gets. ``answer_digest`` names an answer exactly (a record is all
its fields; a read is the record and whether its content was captured; a listing every record in
it), so that a question asked of another view can be told to get the same answer (``memo``: kept
cataloger results; ``core.replay``: an analysis's kept catalogers phase).

Shared selections are asked again by name. The evidence selections of the language analyzers name
their globs (``evidence:`` and the patterns): one asked before the analyzer that registers it has
been loaded is registered from its name (``globs.GlobSet``), so a view can be asked it with no
analyzer loaded; the candidate-binary selections are registered by their module, loaded on demand.
Nothing here loads a model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from portwarden.core.analyzers.globs import EVIDENCE_SELECTION_PREFIX
from portwarden.core.image.resolver import FileResolver, Select, registered_selection
from portwarden.core.model.files import FileRecord

Step = tuple[str, str, str]  # (question, its argument, digest of the answer)
RecordKey = tuple[str, str, int, int, int, int, str | None, str | None, str | None]
# Selections registered by a module rather than a glob set: the module is loaded when one is asked.
_SELECTION_MODULES = {
    "candidate-binaries": "portwarden.core.analyzers.binary.candidates",
    "first-candidate-binary": "portwarden.core.analyzers.binary.candidates",
}


def selection_named(name: str) -> Select | None:
    """The selection registered as ``name``; an evidence selection or a candidate-binary one not
    registered yet is registered first (see the module docstring); None for any other name."""
    select = registered_selection(name)
    if select is not None:
        return select
    if name.startswith(EVIDENCE_SELECTION_PREFIX):
        from portwarden.core.analyzers.globs import GlobSet

        globs = GlobSet(name[len(EVIDENCE_SELECTION_PREFIX) :].split("\0"))
        return registered_selection(name) if globs.selection_name == name else None
    module = _SELECTION_MODULES.get(name)
    if module is not None:
        import importlib

        importlib.import_module(module)
        return registered_selection(name)
    return None


def _record_key(record: FileRecord | None) -> RecordKey | None:
    if record is None:
        return None
    return (
        record.path,
        record.type.value,
        record.mode,
        record.uid,
        record.gid,
        record.size,
        record.sha256,
        record.link_target,
        record.layer_digest,
    )


def _records_key(records: Iterable[FileRecord]) -> tuple[RecordKey | None, ...]:
    return tuple(map(_record_key, records))


def answer(view: FileResolver, question: str, argument: str) -> object:
    """The answer ``view`` gives to ``question`` about ``argument``, as compared between views."""
    if question == "lstat":
        return _record_key(view.lstat(argument))
    if question == "stat":
        return _record_key(view.stat(argument))
    if question == "realpath":
        return view.realpath(argument)
    if question == "content":
        return (_record_key(view.stat(argument)), view.has_content(argument))
    if question == "record":
        return _record_key(view.record(argument))
    if question == "glob":
        return _records_key(view.glob(argument))
    if question == "walk":
        return _records_key(view.walk(argument))
    if question == "selection":
        select = selection_named(argument)
        if select is None:
            raise KeyError(f"no selection is registered as {argument!r}")
        return _records_key(view.selection(argument, select))
    if question == "records":
        return _records_key(view.records())
    if question == "paths":
        return tuple(view.sorted_paths())
    if question == "names":
        return tuple(sorted((name, tuple(found)) for name, found in view.paths_by_name().items()))
    if question == "count":
        return len(view)
    raise KeyError(f"unknown question {question!r}")


def answer_digest(view: FileResolver, question: str, argument: str) -> str:
    # repr of nested tuples of str, int, bool and None is exact and stable across runs.
    return hashlib.blake2b(repr(answer(view, question, argument)).encode(), digest_size=16).hexdigest()
