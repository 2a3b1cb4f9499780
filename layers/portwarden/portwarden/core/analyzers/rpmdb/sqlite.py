"""The SQLite rpm database, ``rpmdb.sqlite`` (rpm >= 4.16: Fedora 33+, RHEL 9, CBL-Mariner 2).

Headers live in ``Packages(hnum INTEGER PRIMARY KEY, blob BLOB)``; the other tables are indexes. The
file is opened from memory (``sqlite3`` deserialize) so nothing is written to disk and the image file
is never touched. rpm keeps the database in WAL mode, which an in-memory database cannot use, so the
copy is switched to rollback-journal mode first; any WAL file left beside it in the image is not
read (rpm checkpoints it when a transaction ends, so an image normally has none).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from portwarden.core.errors import CorruptPackageDatabaseError

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_HEADER_SIZE = 100
# Offsets of the file-format read/write version bytes: 2 means WAL.
_FORMAT_VERSION_OFFSETS = (18, 19)
_ROLLBACK_JOURNAL = 1
# SQLite is robust against corrupt files, but a crafted one can still make a query slow; bound it.
QUERY_DEADLINE_SECONDS = 60.0
_PROGRESS_INSTRUCTIONS = 10_000


def read_sqlite_blobs(data: bytes, warnings: list[str]) -> Iterator[bytes]:
    """Every header blob of ``rpmdb.sqlite``, in ``hnum`` (install) order."""
    import sqlite3  # on first use: few images hold an rpmdb.sqlite

    if len(data) < SQLITE_HEADER_SIZE or not data.startswith(SQLITE_MAGIC):
        raise CorruptPackageDatabaseError("not an SQLite database (bad header)")
    image = bytearray(data)
    for offset in _FORMAT_VERSION_OFFSETS:
        image[offset] = _ROLLBACK_JOURNAL
    connection = sqlite3.connect(":memory:")
    deadline = time.monotonic() + QUERY_DEADLINE_SECONDS
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_INSTRUCTIONS)
    try:
        connection.deserialize(image)
        del image
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA cell_size_check = ON")
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
        for hnum, blob in rows:
            if isinstance(blob, bytes):
                yield blob
            else:
                warnings.append(f"rpmdb.sqlite row {hnum}: blob is {type(blob).__name__}, not bytes; skipped")
    except sqlite3.Error as exc:
        if time.monotonic() > deadline:
            raise CorruptPackageDatabaseError(
                f"rpmdb.sqlite could not be read within {QUERY_DEADLINE_SECONDS:.0f} seconds"
            ) from exc
        raise CorruptPackageDatabaseError(f"rpmdb.sqlite cannot be read: {exc}") from exc
    finally:
        connection.close()
