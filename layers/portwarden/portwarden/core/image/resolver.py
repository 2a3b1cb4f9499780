"""The read-only view analyzers get of an image filesystem.

Analyzers never see tarballs, registries or S3 (DESIGN §4 rule 6): they ask a ``FileResolver`` for
records and contents. Every lookup is confined to the image root: symlinks are resolved the way the
kernel would resolve them with the image as ``/`` (absolute targets restart at the image root, ``..``
stops at it), with a hop limit against loops.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image import paths
from portwarden.core.model.files import FileRecord, FileType

MAX_SYMLINK_HOPS = 40


class ContentSource(Protocol):
    """Where file contents come from, by sha256."""

    def has(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO: ...


Select = Callable[["FileResolver"], Iterable[FileRecord]]
# Shared selections by name (``FileResolver.selection``), for a view to be asked again what another
# view was asked (``core.analyzers.memo``). Registered when their modules load.
_SELECTIONS: dict[str, Select] = {}


def register_selection(name: str, select: Select) -> str:
    """Make ``select`` the selection named ``name`` (the first registration stays: a name stands for
    one selection); returns the name."""
    _SELECTIONS.setdefault(name, select)
    return name


def registered_selection(name: str) -> Select | None:
    return _SELECTIONS.get(name)


def _normalized(path: str) -> str:
    """``paths.normalize(path)``, without its walk for a path that is canonical already."""
    return path if _is_canonical(path) else paths.normalize(path)


def _is_canonical(path: str) -> bool:
    """Absolute, not the root, no empty, ``.`` or ``..`` component, no trailing slash."""
    if path[:1] != "/" or path[-1:] == "/" or "//" in path:
        return False
    ended = path + "/"
    return "/./" not in ended and "/../" not in ended


class FileResolver:
    """A read-only, root-confined view of a set of file records and their captured contents."""

    def __init__(self, records: Mapping[str, FileRecord], contents: ContentSource) -> None:
        self._records = dict(records)
        self._contents = contents
        self._sorted_paths: list[str] | None = None
        self._by_name: dict[str, list[str]] | None = None
        self._selections: dict[str, tuple[FileRecord, ...]] = {}
        # Directory -> whether it and every directory above it are records that are not symlinks:
        # a path below such a directory resolves to itself without a walk (see ``_resolve``).
        self._plain_directories: dict[str, bool] = {"/": True}

    # -- lookups ----------------------------------------------------------------------------
    def lstat(self, path: str) -> FileRecord | None:
        """The record at ``path`` itself (a symlink is returned as the link); parents are resolved."""
        canonical = _normalized(path)
        if canonical == "/":
            return self._records.get("/")
        directory = self._resolve(paths.parent(canonical), follow_last=True)
        if directory is None:
            return None
        return self._records.get(paths.normalize(directory + "/" + canonical.rsplit("/", 1)[1]))

    def stat(self, path: str) -> FileRecord | None:
        """The record ``path`` leads to, following symlinks (None when dangling or looping)."""
        real = self.realpath(path)
        return None if real is None else self._records.get(real)

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def realpath(self, path: str) -> str | None:
        """The canonical path ``path`` resolves to inside the image, or None when it cannot resolve."""
        resolved = self._resolve(_normalized(path), follow_last=True)
        if resolved is None or (resolved != "/" and resolved not in self._records):
            return None
        return resolved

    def open(self, path: str) -> BinaryIO:
        """The content of the regular file ``path`` leads to."""
        record = self.stat(path)
        if record is None:
            raise FileNotFoundError(path)
        if record.type not in (FileType.FILE, FileType.HARDLINK) or record.sha256 is None:
            raise (
                IsADirectoryError(path)
                if record.type == FileType.DIRECTORY
                else ContentUnavailableError(f"{path} is a {record.type.value}, not a regular file")
            )
        if not self._contents.has(record.sha256):
            raise ContentUnavailableError(f"the content of {path} was not captured")
        return self._contents.open(record.sha256)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        with self.open(path) as handle:
            return handle.read() if limit is None else handle.read(limit)

    def read_text(self, path: str, limit: int | None = None) -> str:
        return self.read_bytes(path, limit).decode("utf-8", errors="replace")

    def has_content(self, path: str) -> bool:
        record = self.stat(path)
        return record is not None and record.sha256 is not None and self._contents.has(record.sha256)

    def glob(self, pattern: str) -> Iterator[FileRecord]:
        """Records whose path matches ``pattern`` (see ``paths.glob_to_regex``), in path order."""
        regex = paths.glob_to_regex(pattern)
        for path in self._paths():
            if regex.match(path):
                yield self._records[path]

    def walk(self, top: str = "/") -> Iterator[FileRecord]:
        """Every record at or below ``top`` (not following symlinks), in path order."""
        directory = paths.normalize(top)
        for path in self._paths():
            if paths.is_within(path, directory):
                yield self._records[path]

    def records(self) -> Iterable[FileRecord]:
        return map(self._records.__getitem__, self._paths())

    def sorted_paths(self) -> Sequence[str]:
        """Every path, in order (without building a record view per path; the list is shared)."""
        return self._paths()

    def paths_by_name(self) -> Mapping[str, list[str]]:
        """Every path by its last component (made once, shared: do not change it)."""
        if self._by_name is None:
            by_name: dict[str, list[str]] = {}
            for path in self._records:
                name = path[path.rfind("/") + 1 :]
                same = by_name.get(name)
                if same is None:
                    by_name[name] = [path]
                else:
                    same.append(path)
            self._by_name = by_name
        return self._by_name

    def selection(
        self, name: str, select: Callable[[FileResolver], Iterable[FileRecord]]
    ) -> tuple[FileRecord, ...]:
        """The records ``select`` picks, worked out on the first call for ``name`` and shared by the
        analyzers that ask for the same selection (the view never changes)."""
        chosen = self._selections.get(name)
        if chosen is None:
            chosen = self._selections[name] = tuple(select(self))
        return chosen

    def record(self, path: str) -> FileRecord | None:
        """The record at exactly ``path`` as listed by ``sorted_paths`` (no symlink followed)."""
        return self._records.get(path)

    def __len__(self) -> int:
        return len(self._records)

    # -- internals ----------------------------------------------------------------------------
    def _paths(self) -> list[str]:
        if self._sorted_paths is None:
            self._sorted_paths = sorted(self._records)
        return self._sorted_paths

    def _is_plain_directory(self, directory: str) -> bool:
        """Whether ``directory`` (canonical) and each directory above it is a record, and none a symlink."""
        plain = self._plain_directories.get(directory)
        if plain is None:
            record = self._records.get(directory)
            plain = (
                record is not None
                and record.type != FileType.SYMLINK
                and self._is_plain_directory(directory[: directory.rfind("/")] or "/")
            )
            self._plain_directories[directory] = plain
        return plain

    def _resolve(self, path: str, follow_last: bool) -> str | None:
        """Walk ``path`` component by component, following symlinks inside the root."""
        # The usual case first: a canonical path whose directories are all plain records resolves to
        # itself (the walk would find each of them and follow nothing), unless its last component is
        # a symlink to follow.
        if _is_canonical(path):
            cut = path.rfind("/")
            if self._is_plain_directory(path[:cut] or "/"):
                record = self._records.get(path)
                if record is None or not follow_last or record.type != FileType.SYMLINK:
                    return path
        pending = [p for p in path.split("/") if p]
        pending.reverse()
        current = "/"
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                current = paths.parent(current)
                continue
            candidate = (current.rstrip("/") + "/" + part) if current != "/" else "/" + part
            record = self._records.get(candidate)
            is_last = not pending
            if record is not None and record.type == FileType.SYMLINK and (follow_last or not is_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = record.link_target or ""
                if target.startswith("/"):
                    current = "/"
                pending.extend(reversed([p for p in target.split("/") if p]))
                continue
            if record is None and not is_last:
                return None
            current = candidate
        return current

    # -- construction for tests and local trees ----------------------------------------------
    @classmethod
    def from_directory(cls, root: Path) -> FileResolver:
        """A resolver over a real directory tree (fixtures, unpacked rootfs); nothing outside ``root``
        is ever read, and symlinks are recorded, not followed."""
        records: dict[str, FileRecord] = {"/": FileRecord(path="/", type=FileType.DIRECTORY, mode=0o755)}
        contents = _MemoryContents()
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                full = Path(dirpath) / name
                info = full.lstat()
                image_path = "/" + full.relative_to(root).as_posix()
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISLNK(info.st_mode):
                    records[image_path] = FileRecord(
                        path=image_path, type=FileType.SYMLINK, mode=mode, link_target=str(full.readlink())
                    )
                elif stat.S_ISDIR(info.st_mode):
                    records[image_path] = FileRecord(path=image_path, type=FileType.DIRECTORY, mode=mode)
                elif stat.S_ISREG(info.st_mode):
                    data = full.read_bytes()
                    digest = hashlib.sha256(data).hexdigest()
                    contents.add(digest, data)
                    records[image_path] = FileRecord(
                        path=image_path, type=FileType.FILE, mode=mode, size=len(data), sha256=digest
                    )
        return cls(records, contents)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes | str]) -> FileResolver:
        """A resolver over in-memory files (``{"/etc/os-release": "ID=debian\\n"}``); parent
        directories are implied."""
        records: dict[str, FileRecord] = {"/": FileRecord(path="/", type=FileType.DIRECTORY, mode=0o755)}
        contents = _MemoryContents()
        for raw_path, body in files.items():
            path = paths.normalize(raw_path)
            data = body.encode() if isinstance(body, str) else body
            digest = hashlib.sha256(data).hexdigest()
            contents.add(digest, data)
            records[path] = FileRecord(
                path=path, type=FileType.FILE, mode=0o644, size=len(data), sha256=digest
            )
            directory = paths.parent(path)
            while directory != "/" and directory not in records:
                records[directory] = FileRecord(path=directory, type=FileType.DIRECTORY, mode=0o755)
                directory = paths.parent(directory)
        return cls(records, contents)


class _MemoryContents:
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def add(self, sha256: str, data: bytes) -> None:
        self._data[sha256] = data

    def has(self, sha256: str) -> bool:
        return sha256 in self._data

    def open(self, sha256: str) -> BinaryIO:
        try:
            return io.BytesIO(self._data[sha256])
        except KeyError as exc:
            raise ContentUnavailableError(f"content sha256:{sha256} was not captured") from exc
