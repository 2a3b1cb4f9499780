"""A streaming tar parser over an inflated layer.

It reads what tarfile reads (v7, ustar, GNU long names, pax headers) and ends the archive where
tarfile does, but takes file data straight from the inflater's chunks, without tarfile's
per-member objects and buffer copies, which dominate the cost of layers made of many small files.
"""

from __future__ import annotations

import re
import struct
import tarfile
from collections.abc import Iterator
from zlib import adler32

from portwarden.core.image.inflate import Inflater


class TarFormatError(Exception):
    """The tar stream is malformed (the layer reader names the layer in the error it raises)."""


class HeaderError(TarFormatError):
    """A header block that is not one. Before the first entry the blob is not a tar archive; after
    it, the archive ends there (tarfile's rule: some writers leave garbage after the last entry)."""


class TarMember:
    """One tar entry, extension headers (pax, GNU long names) already applied."""

    __slots__ = ("gid", "linkname", "mode", "name", "size", "sparse", "type", "uid")

    def __init__(
        self, name: str, type: bytes, mode: int, uid: int, gid: int, size: int, linkname: str
    ) -> None:
        self.name = name
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.linkname = linkname
        self.sparse = False


_BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = bytes(_BLOCK)
# Entry types whose size field counts data blocks that follow the header (as tarfile reads them).
_DATA_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE})
_KNOWN_TYPES = frozenset(tarfile.SUPPORTED_TYPES) | {tarfile.SOLARIS_XHDTYPE}
_PAX_TYPES = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})
_GNU_LONG_TYPES = frozenset({tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK})
# Extension headers are held in memory: a pax header or long name beyond this is hostile.
MAX_EXTENSION_HEADER_BYTES = 1024 * 1024
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")


def _text(field: bytes) -> str:
    return field.partition(b"\0")[0].decode("utf-8", "surrogateescape")


_BASE256_MARKS = (0o200, 0o377)


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for values that do not fit."""
    if field[0] in _BASE256_MARKS:
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0o377 else value
    text = field.partition(b"\0")[0]
    try:
        # int() ignores the whitespace around the digits that strip() would remove, and more;
        # only a field of nothing but whitespace needs the slow path (it reads as 0).
        return int(text, 8)
    except ValueError:
        if text.strip():
            raise HeaderError("invalid number in a tar header") from None
        return 0


def _checksum_matches(block: bytes) -> bool:
    expected = _number(block[148:156])
    # The unsigned sum of the header's bytes, the checksum field counted as spaces. Adler-32's low
    # half is 1 + the byte sum modulo 65521, exact for 256 bytes (at most 65280): two C calls (and
    # one for the field itself) instead of a Python sum over 512 integers, on every header.
    unsigned = (
        (adler32(block[:256]) & 0xFFFF)
        + (adler32(block[256:]) & 0xFFFF)
        - (adler32(block[148:156]) & 0xFFFF)
        - 1
        + 8 * 0x20
    )
    if expected == unsigned:
        return True
    # Some old writers summed signed chars.
    signed: int = sum(struct.unpack_from("148b8x356b", block)) + 8 * 0x20
    return expected == signed


class TarStream:
    """A streaming tar reader over the inflated layer.

    It reads the same formats as tarfile (v7, ustar, GNU long names, pax local and global headers)
    and stops where tarfile stops (end-of-archive marker, or a malformed header after the first
    entry), but hands file data straight from the inflater's chunks: no double buffering, no
    per-member file objects. GNU sparse files are recorded without content.
    """

    def __init__(self, inflater: Inflater) -> None:
        self._inflater = inflater
        self._chunk = b""
        self._pos = 0
        self.offset = 0  # bytes of the tar stream consumed so far
        self._next_header = 0
        self._remaining = 0  # data bytes of the current member not read yet
        self._global_pax: dict[str, str] = {}

    # -- raw access ------------------------------------------------------------------------------
    def _fill(self) -> bool:
        self._chunk = self._inflater.next_chunk()
        self._pos = 0
        return bool(self._chunk)

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        chunk, pos = self._chunk, self._pos
        end = pos + size
        if end <= len(chunk):
            self._pos = end
            self.offset += size
            return chunk[pos:end]  # the whole chunk itself when it is all that is asked for
        pieces = [chunk[pos:]]
        got = len(chunk) - pos
        while got < size and self._fill():
            piece = self._chunk[: size - got]
            self._pos = len(piece)
            pieces.append(piece)
            got += len(piece)
        self.offset += got
        return b"".join(pieces)

    def _skip(self, size: int) -> None:
        while size > 0:
            available = len(self._chunk) - self._pos
            if available == 0:
                if not self._fill():
                    raise TarFormatError("unexpected end of data")
                continue
            step = min(size, available)
            self._pos += step
            self.offset += step
            size -= step

    def drain(self) -> None:
        """Consume the rest of the stream (padding after the end-of-archive marker)."""
        self.offset += len(self._chunk) - self._pos
        while self._fill():
            self.offset += len(self._chunk)
        self._chunk, self._pos = b"", 0

    # -- members ---------------------------------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        """File data of the current member: up to ``size`` bytes, all that is left when negative."""
        if size < 0 or size > self._remaining:
            size = self._remaining
        if size == 0:
            return b""
        data = self._take(size)
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        self._remaining -= size
        return data

    def __iter__(self) -> Iterator[TarMember]:
        first = True
        while True:
            self._skip(self._next_header - self.offset)
            try:
                member = self._member()
            except HeaderError:
                if first:
                    raise
                return
            if member is None:
                return
            first = False
            yield member

    def _header(self) -> bytes | None:
        """The next header block; None at the end of the archive (or of the stream)."""
        block = self._take(_BLOCK)
        if len(block) < _BLOCK:
            if block:
                raise HeaderError("truncated header")
            return None
        if block == _ZERO_BLOCK:
            return None
        if not _checksum_matches(block):
            raise HeaderError("bad checksum")
        return block

    def _extension_data(self, size: int) -> bytes:
        if size > MAX_EXTENSION_HEADER_BYTES:
            raise TarFormatError(f"an extension header of {size} bytes (limit {MAX_EXTENSION_HEADER_BYTES})")
        data = self._take(size)
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        self._skip(-size % _BLOCK)
        return data

    def _member(self) -> TarMember | None:
        """The next entry with its extension headers applied; None at the end of the archive."""
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        extended = False
        while True:
            try:
                block = self._header()
                if block is None:
                    if extended:
                        raise TarFormatError("the archive ends after an extension header")
                    return None
                kind = block[156:157]
                size = _number(block[124:136])
            except HeaderError as exc:
                if extended:  # no longer "the end of the archive": the entry is cut in half
                    raise TarFormatError(f"bad header after an extension header ({exc})") from exc
                raise
            if kind in _PAX_TYPES:
                records = _parse_pax(self._extension_data(size))
                if kind == tarfile.XGLTYPE:
                    self._global_pax.update(records)
                else:
                    pax.update(records)
            elif kind in _GNU_LONG_TYPES:
                value = _text(self._extension_data(size))
                if kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = value
                else:
                    long_link = value
            else:
                if self._global_pax:
                    pax = {**self._global_pax, **pax}
                return self._finish(block, kind, size, pax, long_name, long_link)
            extended = True

    def _finish(
        self,
        block: bytes,
        kind: bytes,
        size: int,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> TarMember:
        # Runs once per entry of every layer: the fields are read in place, and the extension
        # records are looked at only when there are some.
        name = _text(block[0:100])
        if kind == tarfile.AREGTYPE and name.endswith("/"):
            kind = tarfile.DIRTYPE
        if long_name is not None:
            name = long_name
        else:
            if kind == tarfile.DIRTYPE:
                name = name.rstrip("/")
            if block[345] and kind != tarfile.GNUTYPE_SPARSE:
                prefix = _text(block[345:500])
                if prefix:
                    name = f"{prefix}/{name}"
        member = TarMember(
            name,
            kind,
            _number(block[100:108]),
            _number(block[108:116]),
            _number(block[116:124]),
            size,
            long_link if long_link is not None else _text(block[157:257]),
        )
        if pax:
            try:
                if "path" in pax:
                    member.name = pax["path"]
                if "linkpath" in pax:
                    member.linkname = pax["linkpath"]
                for field in ("size", "uid", "gid"):
                    if field in pax:
                        setattr(member, field, int(pax[field]))
            except ValueError:
                raise TarFormatError("invalid number in a pax header") from None
        stored = member.size
        if stored < 0 or member.uid < 0 or member.gid < 0:
            # Only a hostile writer puts negative numbers here; taken as they are they would move
            # the next header backwards.
            raise TarFormatError(f"negative size or owner in the tar header of {member.name[:200]!r}")
        if kind == tarfile.GNUTYPE_SPARSE:
            # Old GNU sparse: the header size counts the stored fragments; more maps may follow.
            isextended = block[482]
            while isextended:
                extra = self._take(_BLOCK)
                if len(extra) < _BLOCK:
                    raise TarFormatError("unexpected end of data")
                isextended = extra[504]
            member.size = max(0, _number(block[483:495]))
            member.type = tarfile.REGTYPE
            member.sparse = True
        elif pax and any(key.startswith("GNU.sparse.") for key in pax):
            member.sparse = True
            member.name = pax.get("GNU.sparse.name", member.name)
            real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size")
            member.size = int(real) if real and real.isdigit() else member.size
        has_data = kind in _DATA_TYPES or kind not in _KNOWN_TYPES
        data_start = self.offset
        self._remaining = 0 if member.sparse or not has_data else stored
        self._next_header = data_start + (-(-stored // _BLOCK) * _BLOCK if has_data else 0)
        return member


def _parse_pax(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records; a malformed one ends the layer (tarfile rejects it too)."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:
            break  # NUL padding
        match = _PAX_RECORD.match(data, position)
        if match is None:
            raise TarFormatError("malformed pax header")
        length = int(match.group(1))
        end = position + length
        if length < 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarFormatError("malformed pax header record")
        key = match.group(2).decode("utf-8", "surrogateescape")
        records[key] = data[match.end() : end - 1].decode("utf-8", "surrogateescape")
        position = end
    return records
