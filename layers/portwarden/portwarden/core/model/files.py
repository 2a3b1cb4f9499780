"""File records: one per entry of the squashed image filesystem (or of one layer)."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import partial
from typing import NamedTuple


class FileType(StrEnum):
    FILE = "file"
    DIRECTORY = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR_DEVICE = "char"
    BLOCK_DEVICE = "block"
    FIFO = "fifo"


class FileRecord(NamedTuple):
    """An entry of an image filesystem.

    ``path`` is absolute inside the image (``/etc/os-release``). ``mode`` holds permission bits plus
    setuid/setgid/sticky (no file-type bits). ``sha256`` is set for regular files (and hard links,
    which carry their target's content). ``link_target`` is the raw symlink text or, for a hard link,
    the absolute path of the file it links to.

    A named tuple, not a pydantic model: an image has tens to hundreds of thousands of records, made
    from values the tar parser or the fragment cache's decoder has already checked, and a tuple is
    made, read and compared at C speed (a model's construction was most of decoding a cached layer).
    The edges that make one from untrusted values check them there. ``_replace`` makes a changed copy.
    """

    path: str
    type: FileType
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    sha256: str | None = None
    link_target: str | None = None
    layer_digest: str | None = None

    @property
    def mode_octal(self) -> str:
        """The mode as Unix tools print it, setuid/setgid/sticky included: ``4755``, ``0644``."""
        return f"{self.mode & 0o7777:04o}"

    @property
    def is_setuid(self) -> bool:
        return bool(self.mode & stat.S_ISUID)

    @property
    def is_setgid(self) -> bool:
        return bool(self.mode & stat.S_ISGID)

    @property
    def is_world_writable(self) -> bool:
        return self.type in (FileType.FILE, FileType.DIRECTORY) and bool(self.mode & stat.S_IWOTH)


# A record from its nine values in order, at C speed: ``make_record((path, type, ..., layer_digest))``.
make_record: Callable[[Iterable[object]], FileRecord] = partial(tuple.__new__, FileRecord)  # type: ignore[assignment]


# (type, mode) -> what the inventory shows of a file besides its record's values (``inventory_flags``).
INVENTORY_FLAGS: dict[tuple[FileType, int], tuple[str, str, bool, bool, bool]] = {}


def inventory_flags(kind: FileType, mode: int) -> tuple[str, str, bool, bool, bool]:
    """The type's name, the octal mode, setuid, setgid and world-writable, as an inventory entry
    (``AnalyzedFile``, the native document's ``files``) shows a file of this type and mode: an image
    has hundreds of thousands of files but few distinct pairs, so each is worked out once. Setuid
    and setgid are of files only (a setgid directory passes its group down)."""
    flags = INVENTORY_FLAGS.get((kind, mode))
    if flags is None:
        record = FileRecord("", kind, mode)  # its properties say it
        is_dir = kind == FileType.DIRECTORY
        flags = INVENTORY_FLAGS[(kind, mode)] = (
            record.type.value,
            sys.intern(record.mode_octal),
            record.is_setuid and not is_dir,
            record.is_setgid and not is_dir,
            record.is_world_writable,
        )
    return flags
