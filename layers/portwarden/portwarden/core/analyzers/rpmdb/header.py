"""The rpm header blob, as every rpmdb backend stores it.

Layout (all integers big-endian): ``il`` (number of index entries, uint32), ``dl`` (size of the data
store, uint32), ``il`` index entries of 16 bytes — tag, type, offset into the store, count — then the
``dl``-byte data store. Region tags (61-63) describe signed sub-ranges and are not needed to read
values. Entries are decoded lazily, each one bounds-checked when read.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass, field

from portwarden.core.errors import CorruptPackageDatabaseError

# rpm's own sanity limits (header_internal.h): more tags or data than this is not a header.
HEADER_MAX_TAGS = 0xFFFF
HEADER_MAX_DATA = 0x0FFFFFFF
HEADER_PREFIX_SIZE = 8
INDEX_ENTRY_SIZE = 16

# Data types.
TYPE_NULL = 0
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9
_INTEGER_FORMATS = {TYPE_CHAR: "B", TYPE_INT8: "B", TYPE_INT16: "H", TYPE_INT32: "I", TYPE_INT64: "Q"}
_STRING_TYPES = frozenset({TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING})

# Tags (rpmtag.h).
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_INSTALLTIME = 1008
TAG_SIZE = 1009
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_FILESIZES = 1028
TAG_FILEMODES = 1030
TAG_FILEDIGESTS = 1035
TAG_FILEFLAGS = 1037
TAG_FILEUSERNAME = 1039
TAG_FILEGROUPNAME = 1040
TAG_SOURCERPM = 1044
TAG_PROVIDENAME = 1047
TAG_REQUIRENAME = 1049
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_LONGFILESIZES = 5008
TAG_LONGSIZE = 5009
TAG_FILEDIGESTALGO = 5011
TAG_MODULARITYLABEL = 5096

# Digest algorithm ids (PGPHASHALGO_*); rpm writes no FILEDIGESTALGO when the digests are md5.
DIGEST_ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
DEFAULT_DIGEST_ALGORITHM = 1

_PREFIX = struct.Struct(">II")
_FILE_FLAG_CONFIG = 1


class RpmHeader:
    """A parsed header index over its data store; values are decoded on demand."""

    __slots__ = ("_index", "_store")

    def __init__(self, blob: bytes) -> None:
        if len(blob) < HEADER_PREFIX_SIZE:
            raise CorruptPackageDatabaseError(f"rpm header is {len(blob)} bytes, too short for its prefix")
        tag_count, data_length = _PREFIX.unpack_from(blob, 0)
        if tag_count == 0 or tag_count > HEADER_MAX_TAGS:
            raise CorruptPackageDatabaseError(
                f"rpm header declares {tag_count} tags (limit {HEADER_MAX_TAGS})"
            )
        if data_length > HEADER_MAX_DATA:
            raise CorruptPackageDatabaseError(
                f"rpm header declares {data_length} data bytes (limit {HEADER_MAX_DATA})"
            )
        store_start = HEADER_PREFIX_SIZE + tag_count * INDEX_ENTRY_SIZE
        if store_start + data_length > len(blob):
            raise CorruptPackageDatabaseError(
                f"rpm header declares {tag_count} tags and {data_length} data bytes"
                f" but is only {len(blob)} bytes"
            )
        self._store = blob[store_start : store_start + data_length]
        index: dict[int, tuple[int, int, int]] = {}
        for tag, kind, offset, count in struct.iter_unpack(">iIiI", blob[HEADER_PREFIX_SIZE:store_start]):
            # Later entries override earlier ones: rpm appends "dribble" entries that replace region values.
            index[tag] = (kind, offset, count)
        self._index = index

    def has(self, tag: int) -> bool:
        return tag in self._index

    def _locate(self, tag: int) -> tuple[int, int, int] | None:
        found = self._index.get(tag)
        if found is None:
            return None
        kind, offset, count = found
        if offset < 0 or offset > len(self._store):
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: offset {offset} is outside the data store")
        if count > len(self._store) - offset + (1 if kind == TYPE_NULL else 0):
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: count {count} runs past the data store")
        return found

    def strings(self, tag: int) -> list[str]:
        """The strings of a STRING, STRING_ARRAY or I18NSTRING tag (empty when absent)."""
        located = self._locate(tag)
        if located is None:
            return []
        kind, offset, count = located
        if kind not in _STRING_TYPES:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: type {kind} is not a string type")
        if kind == TYPE_STRING:
            count = 1
        if count == 0:
            return []
        # One C-level split instead of a find per string: the last piece is whatever follows the
        # count-th terminator, so fewer than count + 1 pieces means a string ran off the store.
        pieces = self._store[offset:].split(b"\x00", count)
        if len(pieces) <= count:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: unterminated string")
        del pieces[count:]
        # One decoding of the strings with their terminators, split again: the same strings as
        # decoding each (a NUL byte ends any unfinished UTF-8 sequence, which becomes one U+FFFD
        # either way), without a call per string.
        return b"\x00".join(pieces).decode("utf-8", errors="replace").split("\x00")

    def string(self, tag: int) -> str | None:
        """The first string of a string tag (an I18NSTRING's first locale is the default text)."""
        located = self._locate(tag)
        if located is None:
            return None
        kind, offset, _ = located
        if kind not in _STRING_TYPES:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: type {kind} is not a string type")
        end = self._store.find(b"\x00", offset)
        if end == -1:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: unterminated string")
        return self._store[offset:end].decode("utf-8", errors="replace")

    def integers(self, tag: int) -> list[int]:
        located = self._locate(tag)
        if located is None:
            return []
        kind, offset, count = located
        code = _INTEGER_FORMATS.get(kind)
        if code is None:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: type {kind} is not an integer type")
        width = struct.calcsize(code)
        if offset + count * width > len(self._store):
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: {count} integers run past the data store")
        return list(struct.unpack_from(f">{count}{code}", self._store, offset))

    def integer(self, tag: int) -> int | None:
        values = self.integers(tag)
        return values[0] if values else None

    def binary(self, tag: int) -> bytes | None:
        located = self._locate(tag)
        if located is None:
            return None
        kind, offset, count = located
        if kind != TYPE_BIN:
            raise CorruptPackageDatabaseError(f"rpm tag {tag}: type {kind} is not binary")
        return self._store[offset : offset + count]


@dataclass(frozen=True, slots=True)
class RpmFile:
    path: str
    mode: int | None = None
    size: int | None = None
    digest: str | None = None
    digest_algorithm: str | None = None
    username: str | None = None
    groupname: str | None = None
    is_config: bool = False


@dataclass(frozen=True, slots=True)
class RpmPackageInfo:
    """The fields of an installed rpm the analyzers use."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None
    size: int | None = None
    license: str | None = None
    vendor: str | None = None
    summary: str | None = None
    source_rpm: str | None = None
    modularity_label: str | None = None
    install_time: int | None = None
    digest_algorithm: int = DEFAULT_DIGEST_ALGORITHM
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    files: tuple[RpmFile, ...] = field(default_factory=tuple)
    # Every installed path, in header order (``files`` holds the same paths with their details).
    file_paths: tuple[str, ...] = ()

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, the form rpm version comparison works on."""
        version_release = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{version_release}" if self.epoch is not None else version_release


def _file_paths(header: RpmHeader) -> list[str]:
    basenames = header.strings(TAG_BASENAMES)
    if not basenames:
        return header.strings(TAG_OLDFILENAMES)
    dirnames = header.strings(TAG_DIRNAMES)
    dirindexes = header.integers(TAG_DIRINDEXES)
    if len(dirindexes) != len(basenames):
        raise CorruptPackageDatabaseError(
            f"rpm header has {len(basenames)} basenames but {len(dirindexes)} directory indexes"
        )
    if dirindexes and max(dirindexes) >= len(dirnames):  # unsigned: none is negative
        first = next(index for index in dirindexes if index >= len(dirnames))
        raise CorruptPackageDatabaseError(f"rpm file directory index {first} is out of range")
    # Checked as a whole above, joined at C speed (a distro's database lists tens of thousands).
    return list(map(operator.add, map(dirnames.__getitem__, dirindexes), basenames))


def _per_file(values: list[int] | list[str], count: int) -> list[int | str | None]:
    """A per-file array, or Nones when its length does not match the file list (never misattribute)."""
    if len(values) == count:
        return list(values)
    return [None] * count


def parse_header_blob(blob: bytes, *, file_details: bool = True) -> RpmPackageInfo:
    """Decode the package fields of one header blob; raises CorruptPackageDatabaseError when corrupt.

    ``file_details=False`` decodes the file paths only (``file_paths``; ``files`` is then empty): a
    distro's database lists tens of thousands of files, and the cataloger needs only their paths.
    """
    header = RpmHeader(blob)
    name = header.string(TAG_NAME)
    if not name:
        raise CorruptPackageDatabaseError("rpm header has no package name")
    epoch = header.integer(TAG_EPOCH)
    size = header.integer(TAG_LONGSIZE)
    if size is None:
        size = header.integer(TAG_SIZE)
    algorithm = header.integer(TAG_FILEDIGESTALGO) or DEFAULT_DIGEST_ALGORITHM
    algorithm_name = DIGEST_ALGORITHMS.get(algorithm)

    paths = _file_paths(header)
    files = _file_details(header, paths, algorithm_name) if file_details else ()
    return RpmPackageInfo(
        name=name,
        version=header.string(TAG_VERSION) or "",
        release=header.string(TAG_RELEASE) or "",
        epoch=epoch,
        arch=header.string(TAG_ARCH) or None,
        size=size,
        license=header.string(TAG_LICENSE) or None,
        vendor=header.string(TAG_VENDOR) or None,
        summary=header.string(TAG_SUMMARY) or None,
        source_rpm=header.string(TAG_SOURCERPM) or None,
        modularity_label=header.string(TAG_MODULARITYLABEL) or None,
        install_time=header.integer(TAG_INSTALLTIME),
        digest_algorithm=algorithm,
        provides=tuple(header.strings(TAG_PROVIDENAME)),
        requires=tuple(header.strings(TAG_REQUIRENAME)),
        files=files,
        file_paths=tuple(paths),
    )


def _file_details(header: RpmHeader, paths: list[str], algorithm_name: str | None) -> tuple[RpmFile, ...]:
    count = len(paths)
    modes = _per_file(header.integers(TAG_FILEMODES), count)
    sizes = header.integers(TAG_LONGFILESIZES) or header.integers(TAG_FILESIZES)
    file_sizes = _per_file(sizes, count)
    digests = _per_file(header.strings(TAG_FILEDIGESTS), count)
    flags = _per_file(header.integers(TAG_FILEFLAGS), count)
    users = _per_file(header.strings(TAG_FILEUSERNAME), count)
    groups = _per_file(header.strings(TAG_FILEGROUPNAME), count)
    return tuple(
        RpmFile(
            path=path,
            mode=mode if isinstance(mode, int) else None,
            size=file_size if isinstance(file_size, int) else None,
            digest=digest if isinstance(digest, str) and digest else None,
            digest_algorithm=algorithm_name if isinstance(digest, str) and digest else None,
            username=user if isinstance(user, str) and user else None,
            groupname=group if isinstance(group, str) and group else None,
            is_config=isinstance(flag, int) and bool(flag & _FILE_FLAG_CONFIG),
        )
        for path, mode, file_size, digest, flag, user, group in zip(
            paths, modes, file_sizes, digests, flags, users, groups, strict=True
        )
    )
