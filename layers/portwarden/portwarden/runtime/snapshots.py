"""The vulnerability database copy a warm Match container keeps in /tmp.

Snapshots move through the ``SnapshotFiles`` port (on AWS ``adapters/aws/s3.py``'s
``S3SnapshotFiles``: S3's managed transfer, multipart, streamed to and from disk). A container
downloads the snapshot the pointer item names once, checks its SHA-256 against the pointer, opens it
read-only, and reuses it for every later invocation until the pointer moves to a new build.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.ports import FeedMetadataStore
from portwarden.core.services.phases import OpenDatabase, SnapshotFiles, file_sha256
from portwarden.core.vulns.db import VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher

logger = logging.getLogger(__name__)


class VulnerabilityDbCache:
    """The published database, downloaded once per container and per build."""

    def __init__(self, files: SnapshotFiles, feeds: FeedMetadataStore, directory: Path) -> None:
        self._files = files
        self._feeds = feeds
        self._directory = directory
        self._open: OpenDatabase | None = None
        self._lock = threading.Lock()

    def current(self) -> OpenDatabase | None:
        """The database the pointer names (None before the first sync), opened for matching."""
        pointer = self._feeds.get_db_pointer()
        if pointer is None:
            return None
        with self._lock:
            if self._open is not None and self._open.pointer.sha256 == pointer.sha256:
                return self._open
            path = self._fetch(pointer.location, pointer.sha256)
            previous = self._open
            self._open = OpenDatabase(matcher=Matcher(VulnerabilityDb.open(path)), pointer=pointer)
            if previous is not None:
                previous.matcher.db.close()
                previous.matcher.db.path.unlink(missing_ok=True)
            logger.info("opened vulnerability database %s (built %s)", pointer.location, pointer.built_at)
            return self._open

    def _fetch(self, location: str, sha256: str) -> Path:
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._directory / f"vulndb-{sha256[:16]}.db"
        partial = path.with_suffix(".partial")
        if not self._files.download(location, partial):
            raise VulnerabilityDatabaseError(f"the published database {location} is missing")
        if file_sha256(partial) != sha256:
            partial.unlink(missing_ok=True)
            raise VulnerabilityDatabaseError(f"the published database {location} does not match its checksum")
        partial.replace(path)
        return path

    def close(self) -> None:
        with self._lock:
            if self._open is not None:
                self._open.matcher.db.close()
                self._open = None
