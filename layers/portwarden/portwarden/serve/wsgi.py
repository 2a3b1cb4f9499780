"""The API resolver as a WSGI application, for ``portwarden serve``.

Each HTTP request becomes the API Gateway REST proxy event the Lambda host would receive, so the
one resolver serves both hosts unchanged. This layer does what API Gateway does on AWS: it
authenticates the caller (HTTP Basic against the stored users, instead of IAM) and hands the
account to the resolver in ``requestContext.authorizer``, caps the body size, and logs each request.

Given the store generation (``LocalStore.generation``: a counter every write to the tables the API
reads moves, whichever process writes), it also answers the busiest reads — the image listing, an
image, its vulnerability report and its policy check — from a cache of their answers, as an API
Gateway stage cache would: an answer is kept only if the generation did not move while it was made,
and served only while the generation is still that one. Logins are then verified without a query
either (see ``CredentialCache``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import itertools
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from portwarden.api.auth import AUTHORIZER_ACCOUNT, AUTHORIZER_ACCOUNT_TYPE, AUTHORIZER_USER
from portwarden.api.errors import error_body
from portwarden.core.ports import AccountStore
from portwarden.core.services.accounts import authenticate

logger = logging.getLogger("portwarden.serve.access")

MAX_BODY_BYTES = 64 * 1024 * 1024
# Answers from this size on go to the server as a file (``wsgi.file_wrapper``) where it offers one.
LARGE_BODY_BYTES = 64 * 1024
# Routes anyone may call, as on Anchore (liveness and version probes).
PUBLIC_PATHS = frozenset({"/health", "/version", "/v1/health", "/v1/version"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Resolver(Protocol):
    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Caller:
    username: str
    account: str
    account_type: str


class _LocalContext:
    """The attributes of a Lambda context that Powertools and the routes read."""

    function_name = "portwarden-serve"
    memory_limit_in_mb = 0
    invoked_function_arn = "local"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@dataclass(frozen=True)
class _Login:
    password_hash: str
    expires: float
    caller: Caller
    # The store generation the user and account were read at (None: unknown).
    generation: int | None


class CredentialCache:
    """Verified logins for a few minutes, so that a client sending Basic auth on every request pays
    the memory-hard hash once, not per request.

    Keys are HMACs of ``user:password`` under a per-process secret (no password is kept in memory
    beyond the request). An entry is only honoured while the user's stored hash is unchanged, so a
    password change or a deleted user takes effect at once; while the store generation is the one
    the user and account were read at, nothing they are made of can have changed, and the entry is
    honoured without reading them again.
    """

    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 10_000) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[bytes, _Login] = {}
        self._lock = threading.Lock()

    def key(self, username: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{username}:{password}".encode(), hashlib.sha256).digest()

    def get(self, key: bytes) -> _Login | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry

    def put(self, key: bytes, password_hash: str, caller: Caller, generation: int | None) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            previous = self._entries.get(key)
            # A re-check keeps the time of the full verification: the TTL still bounds an entry.
            expires = (
                previous.expires
                if previous is not None and previous.password_hash == password_hash
                else time.monotonic() + self._ttl
            )
            self._entries[key] = _Login(password_hash, expires, caller, generation)


# The reads answered from the response cache: the listing, an image, its vulnerability report and its
# policy check (with or without the /v1 prefix). What they answer is made only of the store's
# GENERATION_TABLES, the caller and the request line (and, for VEX statements, today's date).
CACHED_READS = re.compile(r"^(?:/v1)?/images(?:/sha256:[0-9a-f]{64}(?:/vuln/(?:os|non-os|all)|/check)?)?$")


@dataclass(frozen=True)
class CachedAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class ResponseCache:
    """Answers of ``CACHED_READS``, each valid for the store generation it was made at.

    The first lookup at a new generation drops every answer of the previous one (they can only be
    stale). Bounded by total body size; the oldest answers go first.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._generation: int | None = None
        self._answers: dict[tuple[Any, ...], CachedAnswer] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], generation: int) -> CachedAnswer | None:
        with self._lock:
            if generation != self._generation:
                if self._generation is not None and generation < self._generation:
                    return None  # a read that began before the newest one
                self._reset(generation)
                return None
            return self._answers.get(key)

    def put(self, key: tuple[Any, ...], generation: int, answer: CachedAnswer) -> None:
        size = len(answer.body)
        if size > self._max_bytes // 4:
            return
        with self._lock:
            if generation != self._generation:
                return
            while self._answers and self._bytes + size > self._max_bytes:
                oldest = next(iter(self._answers))
                self._bytes -= len(self._answers.pop(oldest).body)
            previous = self._answers.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.body)
            self._answers[key] = answer
            self._bytes += size

    def __len__(self) -> int:
        return len(self._answers)

    def _reset(self, generation: int) -> None:
        self._generation = generation
        self._answers.clear()
        self._bytes = 0


class FailureThrottle:
    """Slows down repeated failed logins from one client address: each failure doubles the delay
    of its next 401 (up to ``max_delay``); a success or ``window`` seconds of quiet resets it."""

    def __init__(self, base_delay: float = 0.25, max_delay: float = 4.0, window: float = 300.0) -> None:
        self._base = base_delay
        self._max = max_delay
        self._window = window
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def record_failure(self, client: str) -> float:
        """Count one failure; the delay to impose before answering it."""
        now = time.monotonic()
        with self._lock:
            count, last = self._failures.get(client, (0, now))
            count = 1 if now - last > self._window else count + 1
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures[client] = (count, now)
        return float(min(self._base * 2 ** (count - 1), self._max))

    def reset(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class WsgiHost:
    def __init__(
        self,
        resolver: Resolver,
        accounts: AccountStore,
        *,
        cache: CredentialCache | None = None,
        throttle: FailureThrottle | None = None,
        sleep: Callable[[float], None] = time.sleep,
        generation: Callable[[], int] | None = None,
        responses: ResponseCache | None = None,
    ) -> None:
        self._resolver = resolver
        self._accounts = accounts
        self._cache = cache or CredentialCache()
        self._throttle = throttle or FailureThrottle()
        self._sleep = sleep
        # Without the store generation nothing is answered from memory.
        self._generation = generation
        self._responses = (responses or ResponseCache()) if generation is not None else None
        # Request ids: unique per process start and request, without a random draw per request.
        self._id_prefix = secrets.token_hex(8)
        self._id_counter = itertools.count()

    # ---- WSGI entry point -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = f"{self._id_prefix}{next(self._id_counter):016x}"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO") or "/"
        client = environ.get("REMOTE_ADDR") or "-"
        status, headers, body, user = self._handle(environ, method, path, client, request_id)
        headers.append(("x-request-id", request_id))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_phrase(status)}", headers)
        logger.info(
            "%s %s %s %d %d %.1fms user=%s request_id=%s",
            client,
            method,
            path,
            status,
            len(body),
            (time.perf_counter() - started) * 1000,
            user or "-",
            request_id,
        )
        if method == "HEAD":
            return [b""]
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and len(body) >= LARGE_BODY_BYTES:
            # Handed over as a file: waitress then sends from it instead of copying the whole
            # body into its own output buffer first (a listing of a thousand images is over 1 MB).
            return file_wrapper(io.BytesIO(body))  # type: ignore[no-any-return]
        return [body]

    def _handle(
        self, environ: dict[str, Any], method: str, path: str, client: str, request_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        caller: Caller | None = None
        generation: int | None = None
        if path not in PUBLIC_PATHS:
            generation = self._generation() if self._generation is not None else None
            caller = self._authenticate(environ.get("HTTP_AUTHORIZATION"), client, generation)
            if caller is None:
                # An empty body: anchore-cli then prints its own "check your username/password" hint.
                return 401, [("WWW-Authenticate", 'Basic realm="portwarden"')], b"", None
            if (
                generation is not None
                and self._responses is not None
                and method == "GET"
                and CACHED_READS.match(path)
                and environ.get("CONTENT_LENGTH") in (None, "", "0")
                and not environ.get("HTTP_TRANSFER_ENCODING")
            ):
                return self._cached_read(environ, method, path, caller, request_id, generation)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return (*_error(HTTPStatus.BAD_REQUEST, "Content-Length is not a number"), caller_name(caller))
        if length < 0:
            return (*_error(HTTPStatus.BAD_REQUEST, "Content-Length is negative"), caller_name(caller))
        if length > MAX_BODY_BYTES:
            too_large = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            return (*_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large), caller_name(caller))
        body = environ["wsgi.input"].read(length) if length else b""
        event = to_proxy_event(environ, method, path, body, caller, request_id)
        response = self._resolver.resolve(event, _LocalContext(request_id))
        status, headers, payload = from_proxy_response(response)
        return status, headers, payload, caller_name(caller)

    def _cached_read(
        self,
        environ: dict[str, Any],
        method: str,
        path: str,
        caller: Caller,
        request_id: str,
        generation: int,
    ) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        """A ``CACHED_READS`` request: the answer made at this generation for the same caller,
        account acted for, path and query, or a fresh one (kept if the generation did not move)."""
        assert self._responses is not None and self._generation is not None
        key = (
            caller.username,
            caller.account,
            caller.account_type,
            environ.get("HTTP_X_ANCHORE_ACCOUNT"),
            path,
            environ.get("QUERY_STRING", ""),
            # VEX statements expire by date.
            datetime.now(UTC).date(),
        )
        cached = self._responses.get(key, generation)
        if cached is not None:
            return cached.status, list(cached.headers), cached.body, caller.username
        event = to_proxy_event(environ, method, path, b"", caller, request_id)
        response = self._resolver.resolve(event, _LocalContext(request_id))
        status, headers, payload = from_proxy_response(response)
        # Kept only if nothing it may be made of was written meanwhile (a check that evaluated and
        # stored its evaluation moved the generation itself: the next one is served from the store).
        if status == HTTPStatus.OK and self._generation() == generation:
            self._responses.put(key, generation, CachedAnswer(status, tuple(headers), payload))
        return status, headers, payload, caller.username

    # ---- authentication ---------------------------------------------------------------------------

    def _authenticate(self, header: str | None, client: str, generation: int | None) -> Caller | None:
        credentials = parse_basic(header)
        if credentials is None:
            return None
        username, password = credentials
        key = self._cache.key(username, password)
        login = self._cache.get(key)
        if login is not None:
            if generation is not None and login.generation == generation:
                return login.caller
            # Read after ``generation``: an entry stored with it is never newer than what it holds.
            user = self._accounts.get_user(username)
            account = self._accounts.get_account(user.account) if user is not None else None
            if (
                user is not None
                and account is not None
                and user.password_hash == login.password_hash
                and account.state == "enabled"
            ):
                caller = Caller(user.username, account.name, account.type.value)
                self._cache.put(key, user.password_hash, caller, generation)
                return caller
        found = authenticate(self._accounts, username, password)
        if found is None:
            delay = self._throttle.record_failure(client)
            logger.warning("failed login for user %r from %s", username, client)
            self._sleep(delay)
            return None
        self._throttle.reset(client)
        user, account = found
        caller = Caller(user.username, account.name, account.type.value)
        self._cache.put(key, user.password_hash, caller, generation)
        return caller


def caller_name(caller: Caller | None) -> str | None:
    return caller.username if caller is not None else None


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        return None
    return username, password


def to_proxy_event(
    environ: dict[str, Any],
    method: str,
    path: str,
    body: bytes,
    caller: Caller | None,
    request_id: str,
) -> dict[str, Any]:
    """The API Gateway REST proxy event (version 1.0) for one WSGI request."""
    multi_headers: dict[str, list[str]] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").title()
        else:
            continue
        multi_headers.setdefault(name, []).append(str(value))
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    authorizer = (
        {
            AUTHORIZER_USER: caller.username,
            AUTHORIZER_ACCOUNT: caller.account,
            AUTHORIZER_ACCOUNT_TYPE: caller.account_type,
        }
        if caller is not None
        else None
    )
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {key: values[-1] for key, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": encoded,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "local",
            "requestId": request_id,
            "identity": {"sourceIp": environ.get("REMOTE_ADDR")},
            "authorizer": authorizer,
        },
    }


def from_proxy_response(response: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = int(response.get("statusCode", 500))
    headers: list[tuple[str, str]] = []
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(value)) for value in values)
    seen = {name.lower() for name, _ in headers}
    for name, value in (response.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
    headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return status, headers, body


def _error(status: HTTPStatus, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The API's own error body, for the requests refused before they reach it."""
    body = error_body(status, "InvalidRequest", message)
    return status.value, [("Content-Type", "application/json")], body.encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
