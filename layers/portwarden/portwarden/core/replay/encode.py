"""The native document's members, encoded byte for byte as pydantic encodes them, without it.

The document (``sbom.native``) is pydantic's JSON of the analysis, indented two spaces, each member
at its place in the top-level object. What is encoded here is held to a subset whose encoding is
the same with the standard library's ``json``: strings, integers, booleans, null, lists and objects
(``json`` with ``ensure_ascii=False`` escapes exactly what pydantic's encoder does: quotes,
backslashes and control characters, the latter as ``\\u00XX`` or their short forms), never floats,
whose text differs. ``tests/unit/replay`` compares both on every member, over odd values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring  # C: the quoting of a str that pydantic's JSON does too
from typing import Any

from portwarden.core.model.files import FileRecord, inventory_flags

# Entries encoded per piece of a long list: a few MB of JSON (``sbom.native`` uses it too).
STREAM_SLICE = 4096


def member(name: str, value: Any) -> bytes:
    """``"name": value`` as the indented document has it (two spaces in, nested values deeper):
    what ``sbom.native`` cuts out of pydantic's JSON of ``{name: value}``. ``value`` is made of
    ``str``, ``int``, ``bool``, ``None``, lists and dicts only (a float raises ``TypeError``)."""
    return json.dumps({name: _checked(value)}, indent=2, ensure_ascii=False)[2:-2].encode()


def _checked(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("a float is not encoded here (its text would differ from pydantic's)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("an object key is not a string")
            _checked(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _checked(item)
    elif value is not None and not isinstance(value, str | int):
        raise TypeError(f"a {type(value).__name__} is not encoded here")
    return value


def compact(value: Any) -> bytes:
    """pydantic's compact JSON (``model_dump_json()``) of ``value`` (same subset as ``member``)."""
    return json.dumps(_checked(value), separators=(",", ":"), ensure_ascii=False).encode()


def inventory_pieces(
    records: Sequence[FileRecord], slice_size: int
) -> Iterator[tuple[bytes | None, Sequence[FileRecord]]]:
    """The ``files`` member for the inventory whose records these are (in path order), indented two
    levels as the document prints it, without building an ``AnalyzedFile`` per record: pieces of
    ``slice_size`` entries, each with its entries. A slice holding a text that cannot be encoded
    (a lone surrogate, from a name that is not UTF-8) comes as None: ``sbom.native`` has pydantic
    encode it (and report it), the replay gives up. The bytes are those of pydantic's encoding of
    the ``AnalyzedFile``s (``tests/unit/sbom/test_sbom_documents.py``), at about half the cost."""
    if not records:
        yield b'  "files": []', records
        return
    yield b'  "files": [\n', ()
    quote = encode_basestring
    for start in range(0, len(records), slice_size):
        entries = records[start : start + slice_size]
        texts: list[str] = []
        append = texts.append
        for path, kind, mode, uid, gid, size, sha256, link_target, layer_digest in entries:
            type_name, mode_octal, setuid, setgid, world_writable = inventory_flags(kind, mode)
            # Field for field pydantic's layout of an AnalyzedFile two levels deep (declaration
            # order, two spaces a level, ``null``, ``true`` and ``false``, strings quoted as it does).
            append(
                f'    {{\n      "path": {quote(path)},\n      "type": {quote(type_name)},\n'
                f'      "mode": {quote(mode_octal)},\n      "uid": {uid},\n      "gid": {gid},\n'
                f'      "size": {size},\n'
                f'      "sha256": {"null" if sha256 is None else quote(sha256)},\n'
                f'      "link_target": {"null" if link_target is None else quote(link_target)},\n'
                f'      "layer_digest": {"null" if layer_digest is None else quote(layer_digest)},\n'
                f'      "setuid": {"true" if setuid else "false"},\n'
                f'      "setgid": {"true" if setgid else "false"},\n'
                f'      "world_writable": {"true" if world_writable else "false"}\n    }}'
            )
        try:
            body: bytes | None = ",\n".join(texts).encode()
        except UnicodeEncodeError:
            body = None
        if start:
            yield b",\n", ()
        yield body, entries
    yield b"\n  ]", ()
