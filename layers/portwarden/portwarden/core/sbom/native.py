"""The native JSON document: the analysis as Portwarden stores it, minus internal bookkeeping.

Fields appear in model declaration order and free-form maps (package metadata, image config) keep the
order the analyzers produced, so the same analysis always serializes to the same bytes. The document is
described field by field in ``docs/sbom-format.md`` and loads back with ``ImageAnalysis.model_validate_json``.

The document of a large image is large (300,000 files make about 125 MB of JSON), and serializing it in
one piece holds it in memory twice (pydantic's buffer and the ``str`` made from it) on top of the
analysis itself. ``iter_native_json`` produces the very same bytes in bounded pieces instead: the small
fields one by one, the long lists (``files``, ``packages``) a slice of entries at a time, each piece
serialized by pydantic with the document's own settings and indented to its place in the document.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from portwarden.core.image.stacks import STORED_PACKAGES
from portwarden.core.model.analysis import AnalyzedFile, ImageAnalysis
from portwarden.core.model.package import Package
from portwarden.core.replay.encode import STREAM_SLICE, inventory_pieces

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from portwarden.core.model.files import FileRecord

# ``owned_files`` lists every path an OS package installs; assembly uses it to drop language packages an
# OS package already accounts for. It is large (tens of thousands of paths for a typical distro image),
# and the same paths are in ``files``, so the published document leaves it out by default.
_INTERNAL_PACKAGE_FIELDS = frozenset({"owned_files"})

# The fields whose lists grow with the image; every other field is small and serialized whole.
_LONG_LISTS: dict[str, TypeAdapter[list[Any]]] = {
    "files": TypeAdapter(list[AnalyzedFile]),
    "packages": TypeAdapter(list[Package]),
}


def to_native_json(analysis: ImageAnalysis, *, include_owned_files: bool = False, indent: int = 2) -> str:
    """The documented native JSON for ``analysis``."""
    pieces = iter_native_json(analysis, include_owned_files=include_owned_files, indent=indent)
    return b"".join(pieces).decode()


def write_native_json(
    analysis: ImageAnalysis,
    out: SupportsWrite[bytes],
    *,
    include_owned_files: bool = False,
    indent: int | None = 2,
) -> None:
    """Write the native JSON for ``analysis`` to ``out`` (UTF-8) without holding the whole document."""
    for piece in iter_native_json(analysis, include_owned_files=include_owned_files, indent=indent):
        out.write(piece)


def iter_native_json(
    analysis: ImageAnalysis,
    *,
    include_owned_files: bool = False,
    indent: int | None = 2,
    inventory: Sequence[FileRecord] | None = None,
) -> Iterator[bytes]:
    """The bytes of ``to_native_json(analysis)``, in pieces of bounded size.

    Equal, byte for byte, to ``analysis.model_dump_json(indent=indent, exclude=...)``: each top-level field
    is serialized by pydantic on its own (``include={name}``) and spliced into the object, and a long
    list is serialized in slices whose items are re-indented one level deeper. JSON strings never hold a
    raw newline (pydantic escapes it), so every newline in a piece is structural and re-indenting it is
    safe. ``indent=None`` gives pydantic's compact form (the stored analyses use it). ``inventory``:
    as for ``native_json_and_stored_analysis``.
    """
    pieces = _tagged_pieces(
        analysis, include_owned_files=include_owned_files, indent=indent, inventory=inventory
    )
    for _, piece in pieces:
        yield piece


def native_json_and_stored_analysis(
    analysis: ImageAnalysis,
    max_stored_bytes: int,
    members: dict[str, list[bytes]] | None = None,
    inventory: Sequence[FileRecord] | None = None,
) -> tuple[Iterator[bytes], list[bytes] | None]:
    """The native document (``iter_native_json(analysis)``'s pieces) and, encoded with it, the pieces of
    the analysis as the result cache stores it, or None when the document is over ``max_stored_bytes``.

    The two differ in one field only: the stored analysis keeps the packages' ``owned_files`` (its
    ``packages`` member is encoded again, compact, with them); every other member, the 13,500-file
    inventory of an ordinary image among them, is encoded once and its bytes serve both. The stored
    pieces are a JSON document of the same analysis (indented but for ``packages``): the cache reads it
    with ``ImageAnalysis.model_validate_json`` whatever its whitespace. Up to ``max_stored_bytes`` the
    document is held whole; past it, nothing is held (a larger analysis is not stored) and the rest of
    the document is encoded as it is written.

    ``members``, when given, receives the pieces of each member of the document by name, and those of
    the stored analysis's ``packages`` member under ``STORED_PACKAGES`` (what the layer-stack
    cache keeps: ``splice_native_json`` puts them together again); it is left empty when the document
    is over ``max_stored_bytes``.

    ``inventory``, when given, is the analysis's inventory as the squashed view's records, in path
    order: the ``files`` member is encoded from them (``encode_inventory``), whatever ``analysis.files``
    holds (an analysis assembled for its document leaves it empty: no entry model is built).
    """
    printed: list[bytes] = []
    stored: list[bytes] = []
    size = 0
    previous: str | None = None
    pieces = _tagged_pieces(analysis, include_owned_files=False, indent=2, inventory=inventory)
    for name, piece in pieces:
        size += len(piece)
        if size > max_stored_bytes:
            if members is not None:
                members.clear()
            return itertools.chain(printed, [piece], (rest for _, rest in pieces)), None
        printed.append(piece)
        if members is not None and name is not None:
            members.setdefault(name, []).append(piece)
        if name != "packages":
            stored.append(piece)
        elif previous != "packages":  # in place of the member: the whole of it, compact, with owned files
            compact = list(_member(analysis, "packages", None, None))
            stored.extend(compact)
            if members is not None:
                members[STORED_PACKAGES] = compact
        previous = name
    return iter(printed), stored


def native_members(analysis: ImageAnalysis, names: Iterable[str]) -> dict[str, bytes]:
    """The document's members ``names`` of ``analysis``, each as ``iter_native_json`` prints it
    (``"name": value``, indented to its place): what ``stacks.splice_members`` puts together."""
    return {name: b"".join(_member(analysis, name, None, 2)) for name in names}


def _tagged_pieces(
    analysis: ImageAnalysis,
    *,
    include_owned_files: bool,
    indent: int | None,
    inventory: Sequence[FileRecord] | None = None,
) -> Iterator[tuple[str | None, bytes]]:
    """``iter_native_json``'s pieces, each with the name of the field it belongs to (None between fields)."""
    if indent is not None and indent <= 0:
        raise ValueError("indent is None (compact) or at least 1")
    package_exclude: dict[str, Any] | None = None
    if not include_owned_files:
        package_exclude = {"__all__": set(_INTERNAL_PACKAGE_FIELDS)}
    names = list(type(analysis).model_fields)
    # Compact: '{"a":1,"b":[...]}'. Indented: '{\n' + pad + '"a": 1,\n' ... + '\n}'.
    opening, separator, closing = (b"{", b",", b"}") if indent is None else (b"{\n", b",\n", b"\n}")
    yield None, opening
    for position, name in enumerate(names):
        if position:
            yield None, separator
        if name == "files" and inventory is not None:
            members: Iterable[bytes] = _inventory_member(inventory, indent)
        else:
            members = _member(analysis, name, package_exclude, indent)
        for piece in members:
            yield name, piece
    yield None, closing


def _member(
    analysis: ImageAnalysis, name: str, package_exclude: dict[str, Any] | None, indent: int | None
) -> Iterator[bytes]:
    """The pieces of the document's member ``name`` (``"name": value``, indented to its place)."""
    items = getattr(analysis, name)
    if name in _LONG_LISTS and items:
        exclude = package_exclude if name == "packages" else None
        yield from _long_list(name, items, _LONG_LISTS[name], exclude, indent)
    else:
        field_exclude = {"packages": package_exclude} if name == "packages" and package_exclude else None
        whole = analysis.model_dump_json(indent=indent, include={name}, exclude=field_exclude).encode()
        # The member without the object's braces: '{' + member + '}', or '{\n' + member + '\n}'.
        yield whole[1:-1] if indent is None else whole[2:-2]


def _long_list(
    name: str,
    items: Sequence[Any],
    adapter: TypeAdapter[list[Any]],
    exclude: dict[str, Any] | None,
    indent: int | None,
) -> Iterator[bytes]:
    slices = range(0, len(items), STREAM_SLICE)
    if indent is None:
        yield b'"' + name.encode() + b'":['
        for start in slices:
            piece = adapter.dump_json(list(items[start : start + STREAM_SLICE]), exclude=exclude)
            if start:
                yield b","
            yield piece[1:-1]  # '[' + items + ']'
        yield b"]"
        return
    field_pad = b" " * indent
    # Items sit two levels deep: the document's object, then the list.
    item_newline = b"\n" + field_pad
    yield field_pad + b'"' + name.encode() + b'": [\n'
    for start in slices:
        piece = adapter.dump_json(list(items[start : start + STREAM_SLICE]), indent=indent, exclude=exclude)
        # '[\n' + items at one level + '\n]' -> the items at two levels, without the brackets.
        body = piece[2:-2].replace(b"\n", item_newline)
        if start:
            yield b",\n"
        yield field_pad + body
    yield b"\n" + field_pad + b"]"


def _inventory_member(records: Sequence[FileRecord], indent: int | None) -> Iterator[bytes]:
    if indent == 2:
        yield from encode_inventory(records)
    else:  # another layout (no caller asks one of an inventory given as records): through the models
        files = AnalyzedFile.from_records(records)
        if files:
            yield from _long_list("files", files, _LONG_LISTS["files"], None, indent)
        else:
            yield b'"files":[]' if indent is None else b" " * indent + b'"files": []'


def encode_inventory(records: Sequence[FileRecord]) -> Iterator[bytes]:
    """The document's ``files`` member for these records (``replay.encode.inventory_pieces``), in
    pieces of ``STREAM_SLICE`` entries; a slice holding a text pydantic cannot encode (a lone
    surrogate) is encoded by pydantic, which reports it as it would have."""
    for piece, entries in inventory_pieces(records, STREAM_SLICE):
        if piece is None:
            body = b"".join(
                _long_list("files", AnalyzedFile.from_records(entries), _LONG_LISTS["files"], None, 2)
            )
            piece = body[len(b'  "files": [\n') : -len(b"\n  ]")]
        yield piece
