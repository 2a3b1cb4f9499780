"""The registry client: OCI distribution / Docker Registry v2 over requests.

Authentication follows the distribution token protocol: a request answered with ``401`` and a
``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` challenge is retried with a token from the
realm (fetched with our basic credentials when we have some); ``Basic`` challenges get the
credentials directly. Tokens are cached per (registry, scope) until shortly before they expire, and
once a registry has shown its challenge, later requests authenticate up front instead of paying
for another ``401``.

Transient failures (connection errors, timeouts, ``429``, ``5xx``) are retried with bounded
exponential backoff and jitter, honouring ``Retry-After``; every request has connect and read
timeouts, and an overall deadline (``request_deadline``): a server that answers one byte at a time
never times out a read, so a watchdog cuts the connection when the deadline passes, whatever the
request is doing (connecting, waiting for headers, reading a body, retrying). The deadline covers a
whole manifest, token or tag-list request; a blob download is covered until its response arrives,
and its body by the image deadline of the core (``SafetyLimits.max_image_read_seconds``).

No two threads send through the same ``requests.Session`` at once (layers download on a thread
pool, and a Session is not documented as thread-safe): each request borrows an idle session from the
client's pool; the token cache and the remembered challenges are locked.
Errors come out as the core's types; no message ever contains a secret.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.errors import (
    ImageNotFoundError,
    ImageSourceError,
    LimitExceededError,
    RegistryAuthError,
    RegistryUnavailableError,
)
from portwarden.core.image.manifest import ACCEPT as MANIFEST_ACCEPT
from portwarden.core.image.reference import ImageReference
from portwarden.core.ports import CredentialSource, FetchedManifest

from .auth import (
    AuthChallenge,
    TokenCache,
    parse_www_authenticate,
    pick_challenge,
    pull_scope,
)

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_MAX_MANIFEST_BYTES = 4 * MiB
# Tag lists and token responses are small documents; a cap keeps a hostile server from feeding
# us gigabytes of JSON.
MAX_JSON_BYTES = 16 * MiB
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_TAG_PAGES = 10_000
USER_AGENT = "portwarden/0.1"

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 501 and 505 say "this server will never do that": retrying cannot help.
_PERMANENT_5XX = frozenset({501, 505})
_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before calling a registry unavailable.

    The delay before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2**(n-1))`` scaled by a
    random factor in [0.5, 1] (jitter keeps many clients from retrying in lockstep). A server's
    ``Retry-After`` replaces the computed delay, capped at ``max_retry_after``.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(delay * rng.uniform(0.5, 1.0))

    def retry_after(self, header: str | None, now: Callable[[], float] = time.time) -> float | None:
        """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped; None if absent."""
        if not header:
            return None
        text = header.strip()
        seconds: float | None
        if text.isdigit():
            seconds = float(text)
        else:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
            seconds = when.timestamp() - now()
        return max(0.0, min(seconds, self.max_retry_after))


class _RequestWatch:
    """One request's deadline, and the connection it is using, so a watchdog can cut it.

    The connection classes below attach themselves to the calling thread's watch whenever they
    send a request; at the deadline the watchdog shuts the socket down, which wakes a read blocked
    on a server that trickles bytes (closing the file descriptor from another thread would not).
    """

    def __init__(self, seconds: float, what: str, host: str) -> None:
        self.seconds = seconds
        self.what = what
        self.host = host
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.cut)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            expired = self.expired
        if expired:
            _shutdown(connection)

    def cut(self) -> None:
        with self._lock:
            self.expired = True
            connection = self._connection
        if connection is not None:
            _shutdown(connection)

    def error(self) -> RegistryUnavailableError:
        return RegistryUnavailableError(
            f"{self.what}: {self.host} did not answer within the request deadline of "
            f"{self.seconds:g} s (request_deadline)"
        )


def _shutdown(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


_active = threading.local()


def _current_watch() -> _RequestWatch | None:
    watch: _RequestWatch | None = getattr(_active, "watch", None)
    return watch


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _current_watch()
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _current_watch()
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections that a request deadline can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = _WatchedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class HttpRegistryClient:
    """``portwarden.core.ports.RegistryClient`` over HTTPS (HTTP only for registries marked insecure).

    ``credentials`` answers per registry host (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``);
    ``insecure_registries`` lists hosts spoken to over plain HTTP — nothing is insecure implicitly,
    not even ``localhost``.

    ``request_deadline`` bounds each request end to end (see the module docstring). A ``session``
    passed in is used by every thread (tests pass fakes); otherwise every request borrows a session
    no other thread is using.
    """

    def __init__(
        self,
        credentials: CredentialSource | None = None,
        *,
        insecure_registries: Iterable[str] = (),
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        request_deadline: float = 120.0,
        max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES,
        retry: RetryPolicy | None = None,
        tags_page_size: int | None = None,
        session: requests.Session | None = None,
        token_cache: TokenCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._credentials = credentials
        self._insecure = frozenset(normalize_registry_host(host) for host in insecure_registries)
        self._timeout = (connect_timeout, read_timeout)
        self._max_manifest_bytes = max_manifest_bytes
        self._retry = retry or RetryPolicy()
        self._tags_page_size = tags_page_size
        if request_deadline <= 0:
            raise ValueError("request_deadline must be positive")
        self._request_deadline = request_deadline
        self._shared_session = session
        if session is not None:
            session.headers["User-Agent"] = USER_AGENT
        self._all_sessions: list[requests.Session] = []
        self._idle_sessions: list[requests.Session] = []
        self._tokens = token_cache or TokenCache()
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography
        # What each registry asked for last time (realm/service, without per-request scope), so that
        # the next request can authenticate up front.
        self._challenges: dict[str, AuthChallenge] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release pooled connections."""
        if self._shared_session is not None:
            self._shared_session.close()
        with self._lock:
            sessions, self._all_sessions, self._idle_sessions = self._all_sessions, [], []
        for session in sessions:
            session.close()

    @contextmanager
    def _borrowed_session(self) -> Iterator[requests.Session]:
        """A session no other thread is sending with: an idle one, or a new one.

        Sessions are lent per request rather than kept per thread: thread pools come and go (one
        per image read), and a session per thread that ever ran would pile up in a long-lived
        client. There are never more sessions than requests ever ran at once. A streaming body
        keeps its own connection, so a session goes back to the pool as soon as the request is sent.
        """
        if self._shared_session is not None:
            yield self._shared_session
            return
        with self._lock:
            session = self._idle_sessions.pop() if self._idle_sessions else None
        if session is None:
            session = _new_session()
            with self._lock:
                self._all_sessions.append(session)
        try:
            yield session
        finally:
            with self._lock:
                self._idle_sessions.append(session)

    @contextmanager
    def _deadline(self, what: str, host: str) -> Iterator[_RequestWatch]:
        """The calling thread's request deadline: a new one, or the one already running (a token
        fetched for a manifest request counts against the manifest's deadline)."""
        running = _current_watch()
        if running is not None:
            yield running
            return
        watch = _RequestWatch(self._request_deadline, what, host)
        _active.watch = watch
        watch.start()
        try:
            yield watch
        except (requests.RequestException, RegistryUnavailableError, OSError) as exc:
            if watch.expired:
                raise watch.error() from exc
            raise
        finally:
            watch.stop()
            _active.watch = None

    # ---- the RegistryClient port ---------------------------------------------------------------

    def fetch_manifest(self, ref: ImageReference, accept: Sequence[str]) -> FetchedManifest:
        what = f"manifest {ref}"
        url = f"{self._base_url(ref)}/v2/{ref.repository}/manifests/{ref.reference}"
        with self._deadline(what, ref.api_host):
            response = self._get(ref, url, what=what, accept=accept, stream=True)
            try:
                self._raise_for_status(response, ref, what)
                content = self._read_capped(response, self._max_manifest_bytes, what)
                media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
                header_digest = response.headers.get("Docker-Content-Digest", "").strip()
            finally:
                response.close()
        if _DIGEST_RE.match(header_digest):
            digest = header_digest
        elif ref.digest:
            # Keep the digest we asked for: the core then checks the content against it, which a
            # digest computed from the content itself could never fail.
            digest = ref.digest
        else:
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
        return FetchedManifest(content=content, media_type=media_type, digest=digest)

    def tag_digest(self, ref: ImageReference) -> str:
        """The digest ``ref``'s tag points at, from a HEAD of its manifest (no body is transferred, and
        registries such as Docker Hub do not count HEADs against pull limits). A registry that answers
        a HEAD without ``Docker-Content-Digest`` costs one GET of the manifest instead."""
        what = f"manifest {ref}"
        url = f"{self._base_url(ref)}/v2/{ref.repository}/manifests/{ref.reference}"
        response = self._get(ref, url, what=what, accept=MANIFEST_ACCEPT, method="HEAD")
        try:
            self._raise_for_status(response, ref, what)
            header_digest = response.headers.get("Docker-Content-Digest", "").strip()
        finally:
            response.close()
        if _DIGEST_RE.match(header_digest):
            return header_digest
        return self.fetch_manifest(ref, MANIFEST_ACCEPT).digest

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        if not _DIGEST_RE.match(digest):
            # A digest from a hostile manifest must not become part of a URL path (sha256:../..).
            raise ImageSourceError(f"invalid blob digest {digest!r} for {ref.registry}/{ref.repository}")
        what = f"blob {digest} of {ref.registry}/{ref.repository}"
        url = f"{self._base_url(ref)}/v2/{ref.repository}/blobs/{digest}"
        with self._deadline(what, ref.api_host):
            response = self._get(ref, url, what=what, stream=True)
            try:
                self._raise_for_status(response, ref, what)
            except BaseException:
                response.close()
                raise
        return _BlobReader(_ResponseStream(response, what), buffer_size=256 * 1024)

    def list_tags(self, ref: ImageReference) -> list[str]:
        what = f"tags of {ref.registry}/{ref.repository}"
        url = f"{self._base_url(ref)}/v2/{ref.repository}/tags/list"
        if self._tags_page_size:
            url += f"?n={self._tags_page_size}"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(MAX_TAG_PAGES):
            seen.add(url)
            with self._deadline(what, ref.api_host):
                response = self._get(ref, url, what=what, accept=("application/json",), stream=True)
                try:
                    self._raise_for_status(response, ref, what)
                    document = _parse_json(self._read_capped(response, MAX_JSON_BYTES, what), what)
                    next_link = response.links.get("next", {}).get("url")
                finally:
                    response.close()
            page = document.get("tags") if isinstance(document, dict) else None
            # An empty repository answers "tags": null.
            if page is not None:
                if not isinstance(page, list) or not all(isinstance(tag, str) for tag in page):
                    raise ImageSourceError(f"{what}: registry answered a malformed tag list")
                tags.extend(page)
            if not next_link:
                return tags
            url = urljoin(url, next_link)
            if url in seen:
                raise ImageSourceError(f"{what}: the registry's pagination links loop back to {url}")
        raise ImageSourceError(f"{what}: more than {MAX_TAG_PAGES} pages of tags")

    def check_login(self, registry: str) -> None:
        """``GET /v2/`` on ``registry`` with its credentials (and a token, if it asks for one).

        Raises RegistryAuthError when the registry refuses them, RegistryUnavailableError when it
        cannot be reached. The probe names a repository only because token scopes need one.
        """
        ref = ImageReference(registry=registry, repository="portwarden/login-probe", tag="latest")
        what = f"login to {registry}"
        response = self._get(ref, f"{self._base_url(ref)}/v2/", what=what, accept=("application/json",))
        try:
            self._raise_for_status(response, ref, what)
        finally:
            response.close()

    # ---- requests with authentication and redirects --------------------------------------------

    def _base_url(self, ref: ImageReference) -> str:
        scheme = "http" if self._is_insecure(ref) else "https"
        return f"{scheme}://{ref.api_host}"

    def _is_insecure(self, ref: ImageReference) -> bool:
        return ref.registry.lower() in self._insecure or ref.api_host.lower() in self._insecure

    def _get(
        self,
        ref: ImageReference,
        url: str,
        *,
        what: str,
        accept: Sequence[str] = (),
        stream: bool = False,
        method: str = "GET",
    ) -> requests.Response:
        """GET (or HEAD) a registry URL, authenticating as the registry demands and following redirects."""
        scope = pull_scope(ref.repository)
        host = ref.api_host
        authorization = self._authorization_up_front(ref, scope, what)
        response = self._follow(
            ref, url, authorization, accept=accept, stream=stream, what=what, method=method
        )
        if response.status_code == 401 and _origin(response.url) == _origin(url):
            challenge = pick_challenge(parse_www_authenticate(response.headers.get("WWW-Authenticate", "")))
            response.close()
            if challenge is None:
                raise RegistryAuthError(
                    f"{what}: registry {ref.registry} demands authentication in a scheme we do not support"
                )
            self._remember_challenge(host, challenge)
            if challenge.is_bearer:
                self._tokens.invalidate(host, scope)
            retried = self._authorize(ref, scope, challenge, what)
            if retried is None:
                raise RegistryAuthError(
                    f"{what}: registry {ref.registry} requires authentication and no credentials are "
                    "configured for it (add some with `portwarden registry add` or docker login)"
                )
            if retried == authorization and not challenge.is_bearer:
                raise self._refused(ref, what, 401)
            response = self._follow(ref, url, retried, accept=accept, stream=stream, what=what, method=method)
        if response.status_code in (401, 403):
            status = response.status_code
            response.close()
            raise self._refused(ref, what, status)
        return response

    def _follow(
        self,
        ref: ImageReference,
        url: str,
        authorization: str | None,
        *,
        accept: Sequence[str],
        stream: bool,
        what: str,
        method: str = "GET",
    ) -> requests.Response:
        registry_origin = _origin(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            headers: dict[str, str] = {}
            if accept:
                headers["Accept"] = ", ".join(accept)
            # Blob downloads are often redirected to object storage on another host, which must never
            # see the registry's credentials (and would reject an unexpected Authorization header).
            if authorization and _origin(current) == registry_origin:
                headers["Authorization"] = authorization
            response = self._send(method, current, headers=headers, stream=stream, what=what)
            location = response.headers.get("Location")
            if response.status_code in _REDIRECT_STATUSES and location:
                response.close()
                current = urljoin(current, location)
                continue
            return response
        raise ImageSourceError(f"{what}: more than {MAX_REDIRECTS} redirects from {ref.registry}")

    def _authorization_up_front(self, ref: ImageReference, scope: str, what: str) -> str | None:
        host = ref.api_host
        token = self._tokens.get(host, scope)
        if token:
            return f"Bearer {token}"
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        return self._authorize(ref, scope, challenge, what)

    def _authorize(self, ref: ImageReference, scope: str, challenge: AuthChallenge, what: str) -> str | None:
        credential = self._credential(ref)
        if challenge.is_bearer:
            requested = challenge.scope or scope
            token = self._fetch_token(ref, scope, requested, challenge, credential, what)
            return f"Bearer {token}"
        if challenge.is_basic and credential is not None:
            return credential.basic_header()
        return None

    def _remember_challenge(self, host: str, challenge: AuthChallenge) -> None:
        general = {key: value for key, value in challenge.params.items() if key not in ("scope", "error")}
        with self._lock:
            self._challenges[host] = AuthChallenge(scheme=challenge.scheme, params=general)

    def _credential(self, ref: ImageReference) -> RegistryCredential | None:
        if self._credentials is None:
            return None
        return self._credentials.lookup(ref.registry)

    def _fetch_token(
        self,
        ref: ImageReference,
        cache_scope: str,
        requested_scope: str,
        challenge: AuthChallenge,
        credential: RegistryCredential | None,
        what: str,
    ) -> str:
        realm = challenge.realm or ""
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryAuthError(f"{what}: registry {ref.registry} named an invalid token realm {realm!r}")
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", scope) for scope in requested_scope.split())
        headers = {"Accept": "application/json"}
        who = f"user {credential.username!r}" if credential else "anonymous access"
        if credential is not None and credential.identity_token:
            # OAuth2 refresh-token grant: how registries that issue identity tokens expect them back.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.identity_token,
                "client_id": "portwarden",
                "service": challenge.service or "",
                "scope": requested_scope,
            }
            response = self._send(
                "POST", realm, headers=headers, data=form, stream=True, what=f"token for {what}"
            )
        else:
            if credential is not None:
                headers["Authorization"] = credential.basic_header()
                params.append(("account", credential.username))
            response = self._send(
                "GET", realm, headers=headers, params=params, stream=True, what=f"token for {what}"
            )
        try:
            if response.status_code in (401, 403):
                raise RegistryAuthError(
                    f"{what}: the token service of registry {ref.registry} refused {who} "
                    f"(HTTP {response.status_code})"
                )
            if not response.ok:
                raise RegistryAuthError(
                    f"{what}: the token service of registry {ref.registry} answered HTTP "
                    f"{response.status_code}"
                )
            document = _parse_json(self._read_capped(response, MAX_JSON_BYTES, what), "token response")
        finally:
            response.close()
        if not isinstance(document, dict):
            raise RegistryAuthError(f"{what}: the token service of registry {ref.registry} returned no token")
        # The distribution spec names it "token"; OAuth2-style services answer "access_token".
        token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{what}: the token service of registry {ref.registry} returned no token")
        expires_in = document.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else None
        self._tokens.put(ref.api_host, cache_scope, token, lifetime)
        return token

    def _refused(self, ref: ImageReference, what: str, status: int) -> RegistryAuthError:
        credential = self._credential(ref)
        who = f"the credentials of user {credential.username!r}" if credential else "anonymous access"
        return RegistryAuthError(f"{what}: registry {ref.registry} refused {who} (HTTP {status})")

    # ---- transport with retries ----------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        stream: bool,
        what: str,
        params: list[tuple[str, str]] | None = None,
        data: dict[str, str] | None = None,
    ) -> requests.Response:
        host = urlsplit(url).netloc
        last_failure = ""
        attempts = max(1, self._retry.max_attempts)
        watch = _current_watch()
        for attempt in range(1, attempts + 1):
            timeout = self._timeout
            if watch is not None:
                remaining = watch.remaining()
                if watch.expired or remaining <= 0:
                    raise watch.error()
                timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
            try:
                with self._borrowed_session() as session:
                    response = session.request(
                        method,
                        url,
                        headers=headers,
                        params=params,
                        data=data,
                        stream=stream,
                        timeout=timeout,
                        allow_redirects=False,
                    )
            except requests.exceptions.SSLError as exc:
                raise ImageSourceError(
                    f"{what}: TLS with {host} failed ({type(exc).__name__}); a registry served over "
                    "plain HTTP has to be marked insecure"
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if watch is not None and (watch.expired or watch.remaining() <= 0):
                    raise watch.error() from exc
                last_failure = type(exc).__name__
                delay = self._retry.backoff(attempt, self._rng)
            except requests.RequestException as exc:
                raise ImageSourceError(f"{what}: request to {host} failed ({type(exc).__name__})") from exc
            else:
                if not _is_transient(response.status_code):
                    return response
                last_failure = f"HTTP {response.status_code}"
                server_delay = self._retry.retry_after(response.headers.get("Retry-After"))
                delay = self._retry.backoff(attempt, self._rng) if server_delay is None else server_delay
                response.close()
            if attempt == attempts:
                break
            if watch is not None and delay >= watch.remaining():
                raise RegistryUnavailableError(
                    f"{what}: {host} still failing (last: {last_failure}) and the request deadline of "
                    f"{watch.seconds:g} s (request_deadline) leaves no time for another attempt"
                )
            logger.warning(
                "%s: %s from %s, retry %d/%d in %.2fs", what, last_failure, host, attempt, attempts - 1, delay
            )
            self._sleep(delay)
        raise RegistryUnavailableError(
            f"{what}: {host} still failing after {attempts} attempts (last: {last_failure})"
        )

    def _read_capped(self, response: requests.Response, limit: int, what: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise LimitExceededError(f"{what} is {declared} bytes, more than the limit of {limit}")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                total += len(chunk)
                if total > limit:
                    raise LimitExceededError(f"{what} is larger than the limit of {limit} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(f"{what}: the connection broke while reading") from exc
        return b"".join(chunks)

    def _raise_for_status(self, response: requests.Response, ref: ImageReference, what: str) -> None:
        if response.ok:
            return
        status = response.status_code
        codes, messages = _registry_errors(response)
        detail = "; ".join(messages) or f"HTTP {status}"
        if status == 404 or codes & _NOT_FOUND_CODES:
            raise ImageNotFoundError(f"{what} not found in registry {ref.registry} ({detail})")
        if status in (401, 403):
            raise self._refused(ref, what, status)
        raise ImageSourceError(f"{what}: registry {ref.registry} answered HTTP {status} ({detail})")


class _ResponseStream(io.RawIOBase):
    """A streaming response body as a raw binary file; closing it releases the connection."""

    def __init__(self, response: requests.Response, what: str) -> None:
        self._response = response
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            # decode_content undoes a transport Content-Encoding only; the blob's own compression
            # (a gzip layer) is part of its bytes and stays.
            data = self._response.raw.read(len(view), decode_content=True)
        except Exception as exc:
            raise RegistryUnavailableError(f"{self._what}: the connection broke while reading") from exc
        size = len(data)
        view[:size] = data
        return size

    def abort(self) -> None:
        """Cut the download from another thread: a blocked read wakes up and fails."""
        connection = getattr(self._response.raw, "connection", None)
        if connection is not None:
            _shutdown(connection)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class _BlobReader(io.BufferedReader):
    """A blob body, buffered; ``abort`` lets the core's image deadline cut a stalled download."""

    raw: _ResponseStream

    def abort(self) -> None:
        self.raw.abort()


def _is_transient(status: int) -> bool:
    return status in (408, 429) or (500 <= status <= 599 and status not in _PERMANENT_5XX)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _parse_json(content: bytes, what: str) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise ImageSourceError(f"{what}: the registry answered something that is not JSON") from exc


def _registry_errors(response: requests.Response) -> tuple[set[str], list[str]]:
    """The ``errors[].code`` and messages of a distribution error body, if it is one."""
    try:
        raw = response.raw.read(MAX_ERROR_BODY_BYTES, decode_content=True) if response.raw else b""
        document = json.loads(raw or b"{}")
    except Exception:
        return set(), []
    errors = document.get("errors") if isinstance(document, dict) else None
    codes: set[str] = set()
    messages: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        code = error.get("code")
        message = error.get("message")
        if isinstance(code, str):
            codes.add(code)
        text = " ".join(part for part in (code, message) if isinstance(part, str))
        if text:
            messages.append(text[:200])
    return codes, messages
