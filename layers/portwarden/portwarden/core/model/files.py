"""File records: one per entry of the squashed image filesystem (or of one layer)."""

from __future__ import annotations

import stat
from enum import StrEnum

from portwarden.core.model.base import ValueObject


class FileType(StrEnum):
    FILE = "file"
    DIRECTORY = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR_DEVICE = "char"
    BLOCK_DEVICE = "block"
    FIFO = "fifo"


class FileRecord(ValueObject):
    """An entry of an image filesystem.

    ``path`` is absolute inside the image (``/etc/os-release``). ``mode`` holds permission bits plus
    setuid/setgid/sticky (no file-type bits). ``sha256`` is set for regular files (and hard links,
    which carry their target's content). ``link_target`` is the raw symlink text or, for a hard link,
    the absolute path of the file it links to.
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
