"""One build of a database at a time: an exclusive lock next to the published file.

Two syncs that built side by side would each start from the same previous database and the second to
publish would silently drop what the first added. Holding ``<database>.lock`` from before the previous
file is read until the new one is published makes them take turns: the second starts from what the
first published.

The lock is ``flock`` on the lock file: the kernel drops it when its holder exits, however it exits, so
a killed sync never leaves a stale lock (the file itself stays: deleting a lock file races with a
process about to lock it). ``flock`` locks belong to an open file, so two threads of one process that
each open the file exclude each other too. The holder writes its process id and start time into the
file for the message a waiting sync prints.

While the lock is held no other build of the database can be running, so build files found next to it
(``<database>.build-*``) are leftovers of a sync that was killed: :func:`remove_stale_builds`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.vulns.db.builder import BUILD_SUFFIX

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
_POLL_SECONDS = 0.2


class BuildLockTimeoutError(VulnerabilityDatabaseError):
    """Another build of the same database held the lock for longer than the caller would wait."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + LOCK_SUFFIX)


class BuildLock:
    """Exclusive lock on building ``database``; a context manager.

    ``timeout`` is how long to wait for a running build to finish (``None``: as long as it takes, ``0``:
    not at all). ``on_wait`` is told once, with the holder's description, when the lock is busy.
    """

    def __init__(
        self,
        database: Path,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.database = database
        self.path = lock_path(database)
        self.timeout = timeout
        self._on_wait = on_wait
        self._monotonic = monotonic
        self._sleep = sleep
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        started = self._monotonic()
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _holder(fd)
                    waited = self._monotonic() - started
                    if self.timeout is not None and waited >= self.timeout:
                        raise BuildLockTimeoutError(
                            f"another feed sync is building {self.database} ({holder})"
                            + (f"; gave up after waiting {waited:.0f}s" if self.timeout else "")
                        ) from None
                    if not told:
                        told = True
                        logger.info("waiting for the feed sync building %s (%s)", self.path, holder)
                        if self._on_wait is not None:
                            self._on_wait(holder)
                    self._sleep(_POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat(timespec='seconds')}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    pid, _, since = text.partition(" ")
    if pid.isdigit() and since:
        return f"process {pid}, running since {since}"
    return "a process that has just started"


def remove_stale_builds(database: Path) -> int:
    """Delete ``<database>.build-*`` files; call only while holding :class:`BuildLock`. How many."""
    removed = 0
    for leftover in database.parent.glob(f"{database.name}{BUILD_SUFFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            size = leftover.stat().st_size
            leftover.unlink()
            removed += 1
            logger.info("removed %s (%d bytes) left by an interrupted feed sync", leftover, size)
    return removed
