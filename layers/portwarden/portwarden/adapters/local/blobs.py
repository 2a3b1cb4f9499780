"""BlobStore on the local filesystem (atomic writes: temp file + rename)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from portwarden.core.errors import StoreError

_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]+(?:/[A-Za-z0-9._:-]+)*$")


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY_RE.match(key) or ".." in key.split("/"):
            raise StoreError(f"invalid blob key {key!r}")
        return self.root / key.replace(":", "_")

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read blob {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            Path(temp).replace(path)
        except OSError as exc:
            raise StoreError(f"cannot write blob {key}: {exc}") from exc
