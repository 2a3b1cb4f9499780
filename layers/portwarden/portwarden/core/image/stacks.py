"""The layer-stack cache: what an analysis learned from an image's layers, for the next image with
the very same layers.

Everything an analysis says about files and packages comes from the layers alone (the analyzers read
the squashed filesystem, never the image config): two images with the same layers in the same order,
read with the same analyzers, options, limits and platform, have the same packages, files, secrets,
content matches, retrieved files, analyzer runs and warnings. Only the source, the image metadata
(config, history, manifest) and the time differ. Images rebuilt with a new label or entrypoint,
re-tagged with another config, or pushed again with another manifest format share a stack.

An entry keeps those members of the native document as they were printed (indented JSON, see
``sbom.native``) and the stored analysis's ``packages`` member (compact, with ``owned_files``), with
each layer's summary (digest, diff_id, sizes, entry count). A new image on the same stack gets its
native document by encoding the fresh members and splicing the kept ones in (``splice_members``),
without reading a fragment, squashing, or running a cataloger. The analyses stored with the entry
(the first image's and each new one's) are their fresh members and the stack's id
(``cache.AnalysisCache.save_on_stack``): the inventory is stored once per stack.

Keyed by (the result cache's key: analyzer set, options, limits, schema, release; the platform; every
layer's digest and diff_id in order). Read back like a stored analysis: a checksummed zstd frame, a
trailer with the sha256 of what precedes it, and a header that must name this very stack, layer by
layer. Anything else is a miss with a reason (the caller analyzes the image from its fragments and
replaces the entry).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zstandard

from portwarden.core.errors import StoreError
from portwarden.core.image.rendering import CACHE_WARNING_PREFIX

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.image.sources import ResolvedImage
    from portwarden.core.ports import BlobStore

STACK_FORMAT = 1
_STACK_MAGIC = b"portwarden-stack"
# Room for the header (the layers' summaries) and the trailer on top of the members' ``max_bytes``.
_HEADER_ALLOWANCE = 1 << 20
# The native document's members an entry keeps (what the layers determine), and the ones each image
# gets fresh (what its config, manifest, source and clock determine). Together they are every field
# of ``ImageAnalysis`` (a test holds them to it): a new field must be put in one or the other.
STACK_MEMBERS = (
    "distro",
    "packages",
    "files",
    "secrets",
    "content_matches",
    "retrieved_files",
    "analyzers",
    "warnings",
)
FRESH_MEMBERS = ("schema_version", "source", "image", "analyzed_at")
# An analysis stored on a layer stack (``analysis_on_stack``): the result cache's trailer line
# ("portwarden-analysis 3 <sha256>"), format 3 of its stored analyses.
RESULT_MAGIC = b"portwarden-analysis"
RESULT_ON_STACK_FORMAT = 3
# The stored analysis's ``packages`` member (compact, ``owned_files`` kept), under its own name.
STORED_PACKAGES = "packages/stored"
_ENTRY_MEMBERS = (*STACK_MEMBERS, STORED_PACKAGES)


@dataclass(frozen=True)
class StackEntry:
    """The kept members (name → bytes as printed) and the layers' summaries, in order."""

    stack_id: str
    members: Mapping[str, bytes]
    layers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class StackLookup:
    """A lookup: the entry, or why there is none usable (``problem``; None for an ordinary miss)."""

    entry: StackEntry | None
    problem: str | None = None

    @property
    def warning(self) -> str | None:
        return (
            f"{CACHE_WARNING_PREFIX}{self.problem}; the image was assembled again" if self.problem else None
        )


def stack_layers(resolved: ResolvedImage) -> list[tuple[str, str]]:
    """(digest, diff_id) of every layer, in order (the manifest's digests, the config's diff_ids)."""
    diff_ids = resolved.config_document.rootfs.diff_ids
    return [(layer.digest, diff_id) for layer, diff_id in zip(resolved.layers, diff_ids, strict=True)]


class LayerStackCache:
    """Entries by (result key, platform, ordered layer digests and diff_ids)."""

    def __init__(self, blobs: BlobStore, result_key: str, max_bytes: int) -> None:
        self._blobs = blobs
        self.result_key = result_key
        self.max_bytes = max_bytes

    def stack_id(self, resolved: ResolvedImage) -> str:
        return self.id_of(resolved.platform, stack_layers(resolved))

    def id_of(self, platform: str, layers: Sequence[tuple[str, str]]) -> str:
        """The id of the stack of ``layers`` ((digest, diff_id) in order) for ``platform``."""
        shape = {
            "result_key": self.result_key,
            "platform": platform,
            "layers": [list(pair) for pair in layers],
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()

    def _blob_key(self, stack_id: str) -> str:
        return f"stacks/sha256/{stack_id}/{self.result_key}.zst"

    def has(self, resolved: ResolvedImage) -> bool:
        """Whether this image's layer stack has an entry (it is verified when it is looked up)."""
        return self.has_id(self.stack_id(resolved))

    def has_id(self, stack_id: str) -> bool:
        try:
            return self._blobs.exists(self._blob_key(stack_id))
        except StoreError:
            return False

    def lookup(self, resolved: ResolvedImage) -> StackLookup:
        """The entry of this image's layer stack, verified; or a miss (with the reason for a refused one)."""
        found = self.lookup_id(self.stack_id(resolved))
        if found.entry is not None:
            stated = [(layer["digest"], layer["diff_id"]) for layer in found.entry.layers]
            if stated != stack_layers(resolved):
                return self._broken(found.entry.stack_id, "the entry's layers are not the image's")
        return found

    def lookup_id(self, stack_id: str) -> StackLookup:
        """The entry stored under ``stack_id``, verified but for its layers (the caller compares them
        with the image's); or a miss (with the reason for a refused one)."""
        if len(stack_id) != 64 or not all(c in "0123456789abcdef" for c in stack_id):
            return self._broken(stack_id, "not a stack id")
        try:
            raw = self._blobs.get(self._blob_key(stack_id))
            if raw is None:
                return StackLookup(None)
            # The frame states its size (``save`` writes it): checked, then inflated in one call.
            size = zstandard.frame_content_size(raw)
            if size < 0:
                return self._broken(stack_id, "the entry does not state its size")
            if size > self.max_bytes + _HEADER_ALLOWANCE:
                return self._broken(stack_id, "the entry is too large")
            data = zstandard.ZstdDecompressor().decompress(raw)
            end = data.rfind(b"\n")
            magic, _, rest = data[end + 1 :].partition(b" ")
            version, _, stated = rest.partition(b" ")
            if end < 0 or magic != _STACK_MAGIC:
                return self._broken(stack_id, "the entry has no trailer")
            if version != str(STACK_FORMAT).encode():
                return StackLookup(None)  # written by another release: an ordinary miss
            actual = hashlib.sha256(memoryview(data)[:end]).hexdigest()
            if actual != stated.decode("ascii", "replace"):
                return self._broken(stack_id, f"the entry does not match its digest (got {actual})")
            return self._parse(stack_id, data, end)
        except (StoreError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
            return self._broken(stack_id, f"unreadable entry: {exc}")

    def _parse(self, stack_id: str, data: bytes, end: int) -> StackLookup:
        """The entry in ``data[:end]`` (its trailer checked), if it is this stack's."""
        header_end = data.find(b"\n", 0, end)
        if header_end < 0:
            return self._broken(stack_id, "the entry has no header")
        header = json.loads(data[:header_end])
        if header["stack"] != stack_id or header["result_key"] != self.result_key:
            return self._broken(stack_id, f"the entry is of stack {header['stack']}")
        layers = tuple(header["layers"])
        names = [name for name, _ in header["members"]]
        if names != list(_ENTRY_MEMBERS):
            return self._broken(stack_id, f"the entry holds the members {names}")
        body = memoryview(data)[header_end + 1 : end]
        members: dict[str, bytes] = {}
        offset = 0
        for name, size in header["members"]:
            if not isinstance(size, int) or size < 0 or offset + size > len(body):
                return self._broken(stack_id, "its members are truncated")
            members[name] = bytes(body[offset : offset + size])
            offset += size
        if offset != len(body):
            return self._broken(stack_id, "it holds more than the members it lists")
        return StackLookup(StackEntry(stack_id, members, layers))

    @staticmethod
    def _broken(stack_id: str, problem: str) -> StackLookup:
        return StackLookup(None, f"layer stack {stack_id}: {problem}")

    def save(
        self,
        resolved: ResolvedImage,
        layers: Sequence[dict[str, Any]],
        members: Mapping[str, Sequence[bytes]],
    ) -> bool:
        """Store the members (name → pieces, every name of ``STACK_MEMBERS`` and ``STORED_PACKAGES``)
        of an analysis of ``resolved``; False (nothing stored) when they are over ``max_bytes``."""
        return self.save_id(self.stack_id(resolved), layers, members)

    def save_id(
        self, stack_id: str, layers: Sequence[dict[str, Any]], members: Mapping[str, Sequence[bytes]]
    ) -> bool:
        """``save`` for the stack ``stack_id`` (``id_of``) whose layers' summaries are ``layers``."""
        sizes = [(name, sum(len(piece) for piece in members[name])) for name in _ENTRY_MEMBERS]
        if sum(size for _, size in sizes) > self.max_bytes:
            return False
        header = {
            "format": STACK_FORMAT,
            "stack": stack_id,
            "result_key": self.result_key,
            "layers": list(layers),
            "members": sizes,
        }
        head = json.dumps(header).encode() + b"\n"
        if len(head) > _HEADER_ALLOWANCE // 2:
            return False
        hasher = hashlib.sha256(head)
        trailer_size = len(b"\n%s %d " % (_STACK_MAGIC, STACK_FORMAT)) + hasher.digest_size * 2
        compressor = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj(
            size=len(head) + sum(size for _, size in sizes) + trailer_size
        )
        out = [compressor.compress(head)]
        for name in _ENTRY_MEMBERS:
            for piece in members[name]:
                hasher.update(piece)
                out.append(compressor.compress(piece))
        out.append(
            compressor.compress(b"\n%s %d %s" % (_STACK_MAGIC, STACK_FORMAT, hasher.hexdigest().encode()))
        )
        out.append(compressor.flush())
        self._blobs.put(self._blob_key(stack_id), b"".join(out))
        return True


@dataclass(frozen=True)
class OnStack:
    """What is stored as its own members on a layer stack's entry (an analysis, a native document):
    its header, its own members (name → bytes as printed), and the stack's entry, verified and of the
    layers its own ``image`` member names."""

    header: dict[str, Any]
    own: dict[str, bytes]
    entry: StackEntry


def read_on_stack(data: bytes, stacks: LayerStackCache) -> tuple[OnStack | None, str]:
    """``data`` (a header line naming the stack and its own members' sizes, then those members; its
    trailer checked and cut) with its stack's entry; or None and why not."""
    header_end = data.find(b"\n")
    header = json.loads(data[:header_end])
    own: dict[str, bytes] = {}
    offset = header_end + 1
    for name, size in header["members"]:
        if not isinstance(size, int) or size < 0 or offset + size > len(data):
            return None, "its own members are truncated"
        own[name] = data[offset : offset + size]
        offset += size
    if offset != len(data):
        return None, "it holds more than the members it lists"
    stack_id = header["stack"]
    found = stacks.lookup_id(stack_id)
    if found.entry is None:
        return None, found.problem or f"no entry for layer stack {stack_id}"
    # The entry's layers must be the ones named by the image's own ``image`` member.
    image = json.loads(b"{" + own["image"] + b"}")["image"]
    if list(found.entry.layers) != image["layers"]:
        return None, f"the entry of layer stack {stack_id} is of other layers"
    return OnStack(header, own, found.entry), ""


def analysis_on_stack(stack_id: str, fresh: Mapping[str, bytes]) -> bytes:
    """The stored form of an analysis on the entry of ``stack_id`` (``AnalysisCache.save_on_stack``):
    a header line naming the stack and the sizes of ``fresh`` (its own members, as printed), those
    members, then the trailer with the sha256 of all that, in a checksummed zstd frame."""
    header = {"stack": stack_id, "members": [[name, len(piece)] for name, piece in fresh.items()]}
    body = [json.dumps(header).encode() + b"\n", *fresh.values()]
    hasher = hashlib.sha256()
    for piece in body:
        hasher.update(piece)
    trailer = b"\n%s %d %s" % (RESULT_MAGIC, RESULT_ON_STACK_FORMAT, hasher.hexdigest().encode())
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(b"".join([*body, trailer]))


def splice_members(
    names: Sequence[str], fresh: Mapping[str, bytes], kept: Mapping[str, bytes]
) -> tuple[list[bytes], list[bytes]]:
    """The pieces of the native document and of the stored analysis whose members, in the order of
    ``names``, are ``kept``'s (an entry's) and ``fresh``'s (the image's own), as
    ``sbom.native.native_json_and_stored_analysis`` gave them: indented, members in declaration
    order, the stored analysis's ``packages`` compact with ``owned_files``. The document is then byte
    for byte the one of the whole analysis."""
    document = [b"{\n"]
    stored = [b"{\n"]
    for position, name in enumerate(names):
        if position:
            document.append(b",\n")
            stored.append(b",\n")
        if name in kept:
            document.append(kept[name])
            stored.append(kept[STORED_PACKAGES] if name == "packages" else kept[name])
        else:
            document.append(fresh[name])
            stored.append(fresh[name])
    document.append(b"\n}")
    stored.append(b"\n}")
    return document, stored
