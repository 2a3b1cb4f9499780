"""The feed fetcher: downloads vulnerability feeds over HTTP(S), or copies them from ``file://`` mirrors.

* Conditional GET: the ETag and Last-Modified stored by the previous sync are sent as
  ``If-None-Match``/``If-Modified-Since``; a ``304`` comes back as ``not_modified``.
* Bodies are streamed to a temporary file (feeds reach hundreds of MB); the caller deletes it.
* Every request has connect and read timeouts. Connection errors, timeouts, ``429`` and ``5xx`` are
  retried a bounded number of times with exponential backoff (``Retry-After`` honoured, capped); any
  other error status fails at once. Failures come out as ``FeedUnavailableError``.
* ``file://`` URLs (air-gapped mirrors, the examples) are copied; their validators are the file's size
  and modification time, so an unchanged mirror file is "not modified" too.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests

from portwarden.core.errors import FeedUnavailableError
from portwarden.core.ports import FetchedFeed

logger = logging.getLogger(__name__)

USER_AGENT = "portwarden/0.1 (vulnerability feed sync)"
_CHUNK = 1024 * 1024
_PERMANENT_5XX = frozenset({501, 505})


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
    ) -> None:
        self.work_dir = work_dir
        self._session = session
        self.retry = retry or FeedRetryPolicy()
        self.timeout = timeout
        self._sleep = sleep

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
    ) -> FetchedFeed:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            return self._fetch_file(url, etag=etag, last_modified=last_modified)
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
                    return self._save(url, response)
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

    def _save(self, url: str, response: requests.Response) -> FetchedFeed:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self.work_dir, prefix="feed-", delete=False)  # noqa: SIM115
        try:
            with handle:
                # ``raw`` rather than ``iter_content``: a gzip-encoded transfer is decoded, a .gz file
                # is kept as it is (the parsers recognise gzip themselves).
                response.raw.decode_content = True
                shutil.copyfileobj(response.raw, handle, _CHUNK)
            expected = response.headers.get("Content-Length")
            size = Path(handle.name).stat().st_size
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
            if expected and expected.isdigit() and not encoded and int(expected) != size:
                raise FeedUnavailableError(url, f"download cut short: {size} of {expected} bytes")
        except (requests.RequestException, OSError) as exc:
            Path(handle.name).unlink(missing_ok=True)
            raise FeedUnavailableError(url, f"download failed: {exc}") from exc
        except FeedUnavailableError:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return FetchedFeed(
            url=url,
            path=handle.name,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )

    def _fetch_file(self, url: str, *, etag: str | None, last_modified: str | None) -> FetchedFeed:
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
        descriptor, copy = tempfile.mkstemp(dir=self.work_dir, prefix="feed-")
        os.close(descriptor)
        try:
            shutil.copyfile(path, copy)
        except OSError as exc:
            Path(copy).unlink(missing_ok=True)
            raise FeedUnavailableError(url, f"cannot read {path}: {exc.strerror or exc}") from exc
        return FetchedFeed(
            url=url,
            path=copy,
            etag=validator,
            last_modified=email.utils.formatdate(info.st_mtime, usegmt=True),
        )
