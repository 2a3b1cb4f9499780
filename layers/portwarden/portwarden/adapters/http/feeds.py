"""The feed fetcher: downloads vulnerability feeds over HTTP(S), or copies them from ``file://`` mirrors.

* Conditional GET: the ETag and Last-Modified stored by the previous sync are sent as
  ``If-None-Match``/``If-Modified-Since``; a ``304`` comes back as ``not_modified``.
* Bodies are streamed to a temporary file (feeds reach hundreds of MB); the caller deletes it.
* Every request has connect and read timeouts. Connection errors, timeouts, ``429`` and ``5xx`` are
  retried a bounded number of times with exponential backoff (``Retry-After`` honoured, capped); any
  other error status fails at once. Failures come out as ``FeedUnavailableError``.
* ``file://`` URLs (air-gapped mirrors, the examples) are copied; their validators are the file's size
  and modification time, so an unchanged mirror file is "not modified" too.
* Every body is bounded: a caller's ``max_bytes`` (a ``Content-Length`` or file size above it is refused
  before anything is written, a body that outgrows it is cut and deleted), and the free space of
  ``work_dir``, checked before writing and every 64 MiB while writing, must stay above
  ``min_free_bytes``. A ``file:///dev/zero`` mirror therefore fails at the limit, never fills the disk.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests

from portwarden.core.errors import FeedUnavailableError
from portwarden.core.ports import FetchedFeed

logger = logging.getLogger(__name__)

USER_AGENT = "portwarden/0.1 (vulnerability feed sync)"
_CHUNK = 1024 * 1024
_PERMANENT_5XX = frozenset({501, 505})
# Temporary bodies are named so that leftovers of an interrupted sync can be told apart.
TEMP_PREFIX = "feed-"
# Free space the fetcher leaves on the volume of its work directory (the database is built there too).
DEFAULT_MIN_FREE_BYTES = 256 * 1024 * 1024
_FREE_SPACE_CHECK_EVERY = 64 * 1024 * 1024


def format_bytes(size: int) -> str:
    """``1.5 GiB``: sizes in messages."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class _Readable(Protocol):
    def read(self, amt: int, /) -> bytes: ...


def _disk_free(directory: Path) -> int:
    return shutil.disk_usage(directory).free


@dataclass(frozen=True)
class FeedRetryPolicy:
    """Attempts per request, and the backoff between them: ``base_delay * 2**(n-1)``, capped."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                return min(seconds, self.max_retry_after)
        backoff: float = self.base_delay * 2 ** (attempt - 1)
        return min(self.max_delay, backoff)


def _retry_after_seconds(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, moment.timestamp() - time.time())
    return None


class HttpFeedFetcher:
    """``FeedFetcher`` over requests. ``work_dir`` receives the temporary bodies."""

    def __init__(
        self,
        work_dir: Path,
        *,
        session: requests.Session | None = None,
        retry: FeedRetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        sleep: Callable[[float], None] = time.sleep,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        disk_free: Callable[[Path], int] = _disk_free,
    ) -> None:
        self.work_dir = work_dir
        self._session = session
        self.retry = retry or FeedRetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self.min_free_bytes = min_free_bytes
        self._disk_free = disk_free

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = USER_AGENT
        return self._session

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchedFeed:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            return self._fetch_file(url, etag=etag, last_modified=last_modified, max_bytes=max_bytes)
        if scheme not in ("http", "https"):
            raise FeedUnavailableError(url, f"unsupported URL scheme {scheme!r} (http, https or file)")
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.get(
                    url, params=dict(params or {}), headers=request_headers, stream=True, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.retry.attempts:
                    raise FeedUnavailableError(url, f"unreachable after {attempt} attempts: {exc}") from exc
                self._pause(url, attempt, None, type(exc).__name__)
                continue
            except requests.RequestException as exc:
                raise FeedUnavailableError(url, f"request failed: {exc}") from exc
            with response:
                status = response.status_code
                if status == 304:
                    return FetchedFeed(url=url, not_modified=True, etag=etag, last_modified=last_modified)
                if status == 200:
                    return self._save(url, response, max_bytes)
                retryable = status == 429 or (status >= 500 and status not in _PERMANENT_5XX)
                if not retryable or attempt >= self.retry.attempts:
                    tries = f" after {attempt} attempts" if retryable else ""
                    raise FeedUnavailableError(
                        url, f"HTTP {status} {response.reason or ''}".rstrip() + tries, status
                    )
                self._pause(url, attempt, response.headers.get("Retry-After"), f"HTTP {status}")

    def _pause(self, url: str, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        logger.info("%s: %s, retry %d in %.1fs", url, why, attempt, delay)
        self._sleep(delay)

    def discard_leftovers(self) -> int:
        """Delete the temporary bodies an interrupted sync left in ``work_dir``; how many."""
        removed = 0
        for leftover in self.work_dir.glob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        if removed:
            logger.info(
                "removed %d download(s) left by an interrupted feed sync in %s", removed, self.work_dir
            )
        return removed

    def _check_free_space(self, url: str, needed: int) -> None:
        free = self._disk_free(self.work_dir)
        if free - needed < self.min_free_bytes:
            wanted = f"{format_bytes(needed)} for the body plus " if needed else ""
            raise FeedUnavailableError(
                url,
                f"not enough free disk space in {self.work_dir}: {format_bytes(free)} free, "
                f"{wanted}a reserve of {format_bytes(self.min_free_bytes)} needed",
            )

    def _refuse_oversized(self, url: str, announced: int | None, max_bytes: int | None) -> None:
        if max_bytes is not None and announced is not None and announced > max_bytes:
            raise FeedUnavailableError(
                url,
                f"{format_bytes(announced)} is larger than the download limit of {format_bytes(max_bytes)}",
            )
        self._check_free_space(url, announced or 0)

    def _copy_bounded(self, url: str, source: _Readable, target: IO[bytes], max_bytes: int | None) -> int:
        """Copy at most ``max_bytes``; more is an error, and so is free space falling below the reserve."""
        written = 0
        unchecked = 0
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise FeedUnavailableError(
                    url, f"larger than the download limit of {format_bytes(max_bytes)}: download stopped"
                )
            target.write(chunk)
            unchecked += len(chunk)
            if unchecked >= _FREE_SPACE_CHECK_EVERY:
                unchecked = 0
                self._check_free_space(url, 0)

    def _new_body(self) -> tuple[IO[bytes], Path]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self.work_dir, prefix=TEMP_PREFIX, delete=False)  # noqa: SIM115
        return handle, Path(handle.name)

    def _save(self, url: str, response: requests.Response, max_bytes: int | None) -> FetchedFeed:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        expected = response.headers.get("Content-Length")
        announced = int(expected) if expected and expected.isdigit() else None
        self._refuse_oversized(url, announced, max_bytes)
        handle, path = self._new_body()
        try:
            with handle:
                # ``raw`` rather than ``iter_content``: a gzip-encoded transfer is decoded, a .gz file
                # is kept as it is (the parsers recognise gzip themselves).
                response.raw.decode_content = True
                size = self._copy_bounded(url, response.raw, handle, max_bytes)
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
            if announced is not None and not encoded and announced != size:
                raise FeedUnavailableError(url, f"download cut short: {size} of {announced} bytes")
        except (requests.RequestException, OSError) as exc:
            path.unlink(missing_ok=True)
            raise FeedUnavailableError(url, f"download failed: {exc}") from exc
        except FeedUnavailableError:
            path.unlink(missing_ok=True)
            raise
        return FetchedFeed(
            url=url,
            path=str(path),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )

    def _fetch_file(
        self, url: str, *, etag: str | None, last_modified: str | None, max_bytes: int | None
    ) -> FetchedFeed:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FeedUnavailableError(url, "file URLs must name a local path (file:///…)")
        path = Path(url2pathname(unquote(parts.path)))
        try:
            info = path.stat()
        except OSError as exc:
            raise FeedUnavailableError(url, f"cannot read {path}: {exc.strerror or exc}", 404) from exc
        validator = f'"{info.st_size:x}-{info.st_mtime_ns:x}"'
        if etag is not None and etag == validator:
            return FetchedFeed(url=url, not_modified=True, etag=etag, last_modified=last_modified)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # A device or a pipe has no size to announce: the copy itself is bounded.
        self._refuse_oversized(url, info.st_size if stat.S_ISREG(info.st_mode) else None, max_bytes)
        handle, copy = self._new_body()
        try:
            with handle, path.open("rb") as source:
                self._copy_bounded(url, source, handle, max_bytes)
        except OSError as exc:
            copy.unlink(missing_ok=True)
            raise FeedUnavailableError(url, f"cannot read {path}: {exc.strerror or exc}") from exc
        except FeedUnavailableError:
            copy.unlink(missing_ok=True)
            raise
        return FetchedFeed(
            url=url,
            path=str(copy),
            etag=validator,
            last_modified=email.utils.formatdate(info.st_mtime, usegmt=True),
        )
