"""Captured file contents, addressed by sha256.

While layers stream by, the reader keeps the content of the files analyzers asked for. Small
contents stay in memory; larger ones spill to files in the work directory, so memory stays bounded
whatever the image holds. Identical files (same sha256) are stored once.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from portwarden.core.errors import ContentUnavailableError


class ContentStore:
    """Content-addressed storage for captured file contents."""

    def __init__(self, work_dir: Path | None = None, memory_threshold: int = 256 * 1024) -> None:
        self._memory: dict[str, bytes] = {}
        self._spilled: dict[str, Path] = {}
        self._memory_threshold = memory_threshold
        self._work_dir = work_dir
        self._spill_dir: Path | None = None
        self._lock = threading.Lock()

    def has(self, sha256: str) -> bool:
        return sha256 in self._memory or sha256 in self._spilled

    def put_bytes(self, sha256: str, data: bytes) -> None:
        if self.has(sha256):
            return
        if len(data) <= self._memory_threshold:
            with self._lock:
                self._memory[sha256] = data
            return
        target = self._spill_path(sha256)
        target.write_bytes(data)
        with self._lock:
            self._spilled[sha256] = target

    def put_file(self, sha256: str, source: Path) -> None:
        """Adopt a spooled file (moved, not copied) as the content for ``sha256``."""
        if self.has(sha256):
            source.unlink(missing_ok=True)
            return
        target = self._spill_path(sha256)
        shutil.move(str(source), target)
        with self._lock:
            self._spilled[sha256] = target

    def new_spool_file(self) -> Path:
        """A fresh file in the spill directory, for a content too large to hold in memory."""
        handle, name = tempfile.mkstemp(dir=self._ensure_spill_dir(), suffix=".part")
        import os

        os.close(handle)
        return Path(name)

    def open(self, sha256: str) -> BinaryIO:
        data = self._memory.get(sha256)
        if data is not None:
            return io.BytesIO(data)
        path = self._spilled.get(sha256)
        if path is not None:
            return path.open("rb")
        raise ContentUnavailableError(f"content sha256:{sha256} was not captured")

    def size(self, sha256: str) -> int:
        data = self._memory.get(sha256)
        if data is not None:
            return len(data)
        path = self._spilled.get(sha256)
        if path is not None:
            return path.stat().st_size
        raise ContentUnavailableError(f"content sha256:{sha256} was not captured")

    def digests(self) -> list[str]:
        return sorted([*self._memory, *self._spilled])

    def close(self) -> None:
        """Remove spilled files; the store is empty afterwards."""
        with self._lock:
            self._memory.clear()
            self._spilled.clear()
            if self._spill_dir is not None:
                shutil.rmtree(self._spill_dir, ignore_errors=True)
                self._spill_dir = None

    def _spill_path(self, sha256: str) -> Path:
        return self._ensure_spill_dir() / sha256

    def _ensure_spill_dir(self) -> Path:
        with self._lock:
            if self._spill_dir is None:
                base = str(self._work_dir) if self._work_dir is not None else None
                if self._work_dir is not None:
                    self._work_dir.mkdir(parents=True, exist_ok=True)
                self._spill_dir = Path(tempfile.mkdtemp(prefix="content-", dir=base))
            return self._spill_dir
