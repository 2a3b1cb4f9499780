"""Vulnerability database snapshots on S3, and the copy a warm Match container keeps in /tmp.

A snapshot is one SQLite file of up to a few hundred MB: it moves with S3's managed transfer
(multipart, streamed to and from disk) rather than through the in-memory BlobStore. A container
downloads the snapshot the pointer item names once, checks its SHA-256 against the pointer, opens it
read-only, and reuses it for every later invocation until the pointer moves to a new build.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from portwarden.adapters.aws.s3 import S3BlobStore, client_error_code
from portwarden.core.errors import StoreError, VulnerabilityDatabaseError
from portwarden.core.ports import FeedMetadataStore
from portwarden.core.services.phases import OpenDatabase, SnapshotFiles, file_sha256
from portwarden.core.vulns.db import VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher

logger = logging.getLogger(__name__)

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The object tag that marks a snapshot the pointer has moved away from (template.yaml's lifecycle).
RETIRED_TAG = "portwarden-retired"


class S3SnapshotFiles:
    """``SnapshotFiles`` in the bucket (and under the prefix) of an S3BlobStore."""

    def __init__(self, blobs: S3BlobStore) -> None:
        self._blobs = blobs

    def upload(self, key: str, path: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        object_key = self._blobs.object_key(key)
        try:
            self._blobs.client.upload_file(str(path), self._blobs.bucket, object_key)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot upload s3://{self._blobs.bucket}/{object_key}") from exc
        except Exception as exc:  # boto3's transfer manager wraps failures in its own S3UploadFailedError
            raise StoreError(
                f"cannot upload s3://{self._blobs.bucket}/{object_key} ({type(exc).__name__})"
            ) from exc

    def retire(self, key: str) -> None:
        """Tag the object ``RETIRED_TAG=true``: only tagged snapshots are expired by the bucket's
        lifecycle rule, so the snapshot the pointer names is never deleted, however old."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        object_key = self._blobs.object_key(key)
        try:
            self._blobs.client.put_object_tagging(
                Bucket=self._blobs.bucket,
                Key=object_key,
                Tagging={"TagSet": [{"Key": RETIRED_TAG, "Value": "true"}]},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot retire s3://{self._blobs.bucket}/{object_key}") from exc

    def download(self, key: str, path: Path) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self._blobs.object_key(key)
        try:
            self._blobs.client.download_file(self._blobs.bucket, object_key, str(path))
        except ClientError as exc:
            if client_error_code(exc) in _MISSING_CODES:
                return False
            raise StoreError(f"cannot download s3://{self._blobs.bucket}/{object_key}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot download s3://{self._blobs.bucket}/{object_key}") from exc
        return True


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
