"""The API resolver as a WSGI application, for ``portwarden serve``.

Each HTTP request becomes the API Gateway REST proxy event the Lambda host would receive, so the
one resolver serves both hosts unchanged. This layer does what API Gateway does on AWS: it
authenticates the caller (HTTP Basic against the stored users, instead of IAM) and hands the
account to the resolver in ``requestContext.authorizer``, caps the body size, and logs each request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from portwarden.api.auth import AUTHORIZER_ACCOUNT, AUTHORIZER_ACCOUNT_TYPE, AUTHORIZER_USER
from portwarden.api.errors import error_body
from portwarden.core.ports import AccountStore
from portwarden.core.services.accounts import authenticate

logger = logging.getLogger("portwarden.serve.access")

MAX_BODY_BYTES = 64 * 1024 * 1024
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


class CredentialCache:
    """Verified logins for a few minutes, so that a client sending Basic auth on every request pays
    the memory-hard hash once, not per request.

    Keys are HMACs of ``user:password`` under a per-process secret (no password is kept in memory
    beyond the request). An entry is only honoured while the user's stored hash is unchanged, so a
    password change or a deleted user takes effect at once.
    """

    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 10_000) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def key(self, username: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{username}:{password}".encode(), hashlib.sha256).digest()

    def get(self, key: bytes) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: bytes, password_hash: str) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (password_hash, time.monotonic() + self._ttl)


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
    ) -> None:
        self._resolver = resolver
        self._accounts = accounts
        self._cache = cache or CredentialCache()
        self._throttle = throttle or FailureThrottle()
        self._sleep = sleep

    # ---- WSGI entry point -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
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
        return [body] if method != "HEAD" else [b""]

    def _handle(
        self, environ: dict[str, Any], method: str, path: str, client: str, request_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        caller: Caller | None = None
        if path not in PUBLIC_PATHS:
            caller = self._authenticate(environ.get("HTTP_AUTHORIZATION"), client)
            if caller is None:
                # An empty body: anchore-cli then prints its own "check your username/password" hint.
                return 401, [("WWW-Authenticate", 'Basic realm="portwarden"')], b"", None
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

    # ---- authentication ---------------------------------------------------------------------------

    def _authenticate(self, header: str | None, client: str) -> Caller | None:
        credentials = parse_basic(header)
        if credentials is None:
            return None
        username, password = credentials
        key = self._cache.key(username, password)
        cached_hash = self._cache.get(key)
        if cached_hash is not None:
            user = self._accounts.get_user(username)
            account = self._accounts.get_account(user.account) if user is not None else None
            if (
                user is not None
                and account is not None
                and user.password_hash == cached_hash
                and account.state == "enabled"
            ):
                return Caller(user.username, account.name, account.type.value)
        found = authenticate(self._accounts, username, password)
        if found is None:
            delay = self._throttle.record_failure(client)
            logger.warning("failed login for user %r from %s", username, client)
            self._sleep(delay)
            return None
        self._throttle.reset(client)
        user, account = found
        self._cache.put(key, user.password_hash)
        return Caller(user.username, account.name, account.type.value)


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
