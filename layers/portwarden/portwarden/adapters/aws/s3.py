"""BlobStore on S3, vulnerability database snapshot files on S3, and the zstd-compressed JSON codec
the stores use for documents.

An S3 PUT replaces an object atomically (readers see the old object or the new one), which is the
BlobStore contract; nothing else is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zstandard

from portwarden.adapters.aws.clients import LazyClient
from portwarden.core.errors import StoreError
from portwarden.core.model.base import ValueObject

# What S3 and its emulators answer for a key or bucket that is not there.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The object tag that marks a snapshot the pointer has moved away from (template.yaml's lifecycle).
RETIRED_TAG = "portwarden-retired"
_ZSTD_LEVEL = 3


def compress_document(model: ValueObject) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(model.model_dump_json().encode())


def compress_json(text: str) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(text.encode())


def decompress_document(data: bytes) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise StoreError(f"a stored document is corrupt: {exc}") from exc


def client_error_code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class S3BlobStore:
    """Objects under ``prefix`` in ``bucket``.

    ``client`` is used as given (tests pass one); otherwise one is built on first use from ``session``
    (or the default boto3 session) and kept for the life of the process (a warm Lambda container).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any | None = None,
        *,
        session: Any | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self._client = LazyClient("s3", client, session=session, region=region, endpoint_url=endpoint_url)

    @property
    def client(self) -> Any:
        return self._client.get()

    def object_key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"invalid blob key {key!r}")
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        object_key = self.object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            body: bytes = response["Body"].read()
        except ClientError as exc:
            if client_error_code(exc) in _MISSING_CODES:
                return None
            raise StoreError(
                f"cannot read s3://{self.bucket}/{object_key} ({client_error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{object_key} ({type(exc).__name__})") from exc
        return body

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self.object_key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=object_key, Body=data)
        except ClientError as exc:
            raise StoreError(
                f"cannot write s3://{self.bucket}/{object_key} ({client_error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot write s3://{self.bucket}/{object_key} ({type(exc).__name__})") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self.object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if client_error_code(exc) in _MISSING_CODES:
                return False
            raise StoreError(
                f"cannot check s3://{self.bucket}/{object_key} ({client_error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot check s3://{self.bucket}/{object_key} ({type(exc).__name__})") from exc
        return True

    def delete(self, key: str) -> None:
        """Remove the object (S3 answers success for a key that is already gone)."""
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self.object_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            raise StoreError(
                f"cannot delete s3://{self.bucket}/{object_key} ({client_error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot delete s3://{self.bucket}/{object_key} ({type(exc).__name__})") from exc


class S3SnapshotFiles:
    """``SnapshotFiles`` in the bucket (and under the prefix) of an S3BlobStore.

    A snapshot is one SQLite file of up to a few hundred MB: it moves with S3's managed transfer
    (multipart, streamed to and from disk) rather than through the in-memory BlobStore.
    """

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
        from botocore.exceptions import BotoCoreError, ClientError

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
