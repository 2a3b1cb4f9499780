"""A small token server for the distribution registry's ``auth: token`` mode, for tests.

The registry answers unauthenticated requests with ``401`` and ``WWW-Authenticate: Bearer
realm=<this server>,service=…,scope=…``; clients fetch a JWT here and retry with it. The registry
(distribution v2.8) accepts a token when ``iss`` is its configured issuer, ``aud`` its service,
``exp``/``nbf`` bracket now (60 s leeway), and the signing key is proved by an ``x5c`` certificate
chain ending in a certificate of its ``rootcertbundle``. Here the chain is a single self-signed
ES256 certificate that is also the whole root bundle.

Every token request is recorded (``requests``) so tests can count how often a client asked.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.loopback import LoopbackServer

DEFAULT_ISSUER = "portwarden-test-issuer"
DEFAULT_SERVICE = "portwarden-test-registry"
KNOWN_ACTIONS = frozenset({"pull", "push", "delete", "*"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenRequest:
    """What a client asked for (never the password)."""

    method: str
    username: str | None
    service: str | None
    scopes: tuple[str, ...]
    granted: bool


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(scope: str) -> Access | None:
    """``repository:team/app:pull,push`` → Access; the name may itself contain colons."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


class SigningIdentity:
    """An EC P-256 key and a self-signed certificate for it (valid from an hour ago for a day)."""

    def __init__(self, common_name: str = "portwarden test token issuer") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign_jwt(self, claims: Mapping[str, Any]) -> str:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode("ascii")]}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
        )
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        # JWS wants the raw 64-byte r||s form, not the DER signature cryptography returns.
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class TokenIssuer:
    """Issues registry tokens on ``GET /token`` (basic auth) and ``POST /token`` (OAuth2 grants).

    ``users`` maps usernames to passwords; authenticated users get every action they ask for.
    Anonymous callers get ``pull`` only when ``allow_anonymous_pull``, otherwise a token with no
    access (as Docker Hub does for private repositories). ``refresh_tokens`` maps OAuth2 refresh
    (identity) tokens to usernames. ``response_fields`` chooses ``token``, ``access_token`` or both.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        allow_anonymous_pull: bool = False,
        refresh_tokens: Mapping[str, str] | None = None,
        issuer: str = DEFAULT_ISSUER,
        service: str = DEFAULT_SERVICE,
        expires_in: int = 300,
        response_fields: str = "both",
    ) -> None:
        self.users = dict(users or {})
        self.allow_anonymous_pull = allow_anonymous_pull
        self.refresh_tokens = dict(refresh_tokens or {})
        self.issuer = issuer
        self.service = service
        self.expires_in = expires_in
        self.response_fields = response_fields
        self.identity = SigningIdentity()
        self._requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._loopback = LoopbackServer("token-issuer")

    # ---- lifecycle ----

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(_TokenHandler):
            owner = issuer

        self._loopback.start(Handler)
        return self

    def stop(self) -> None:
        self._loopback.stop()

    @property
    def port(self) -> int:
        return self._loopback.port

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def write_root_bundle(self, path: Path) -> Path:
        path.write_bytes(self.identity.certificate_pem())
        return path

    # ---- bookkeeping ----

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # ---- tokens ----

    def issue(self, subject: str, access: list[Access], *, lifetime: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + (lifetime if lifetime is not None else self.expires_in),
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [item.claim() for item in access],
        }
        return self.identity.sign_jwt(claims)

    def grant(self, username: str | None, scopes: list[str]) -> list[Access]:
        granted: list[Access] = []
        for scope in scopes:
            access = parse_scope(scope)
            if access is None:
                continue
            wanted = tuple(a for a in access.actions if a in KNOWN_ACTIONS)
            if username is None:
                wanted = tuple(a for a in wanted if a == "pull") if self.allow_anonymous_pull else ()
            granted.append(Access(access.type, access.name, wanted))
        return granted

    def response_body(self, token: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.response_fields in ("token", "both"):
            body["token"] = token
        if self.response_fields in ("access_token", "both"):
            body["access_token"] = token
        return body


class _TokenHandler(BaseHTTPRequestHandler):
    owner: TokenIssuer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output should not fill with access logs."""

    def do_GET(self) -> None:
        query = parse_qsl(urlsplit(self.path).query)
        scopes = [value for key, value in query if key == "scope"]
        service = next((value for key, value in query if key == "service"), None)
        username: str | None = None
        header = self.headers.get("Authorization")
        if header:
            username = self._check_basic(header)
            if username is None:
                self.owner._record(
                    TokenRequest("GET", self._claimed_user(header), service, tuple(scopes), False)
                )
                self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]})
                return
        self._answer("GET", username, service, scopes)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        scopes = form.get("scope", "").split()
        service = form.get("service")
        username: str | None = None
        if form.get("grant_type") == "refresh_token":
            username = self.owner.refresh_tokens.get(form.get("refresh_token", ""))
        elif form.get("grant_type") == "password":
            candidate = form.get("username", "")
            if self.owner.users.get(candidate) == form.get("password"):
                username = candidate
        if username is None:
            self.owner._record(TokenRequest("POST", None, service, tuple(scopes), False))
            self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid grant"}]})
            return
        self._answer("POST", username, service, scopes)

    def _answer(self, method: str, username: str | None, service: str | None, scopes: list[str]) -> None:
        if service != self.owner.service:
            self.owner._record(TokenRequest(method, username, service, tuple(scopes), False))
            self._json(400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]})
            return
        token = self.owner.issue(username or "", self.owner.grant(username, scopes))
        self.owner._record(TokenRequest(method, username, service, tuple(scopes), True))
        self._json(200, self.owner.response_body(token))

    def _check_basic(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if username in self.owner.users and secrets.compare_digest(self.owner.users[username], password):
            return username
        return None

    def _claimed_user(self, header: str) -> str | None:
        try:
            return base64.b64decode(header.partition(" ")[2]).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None

    def _json(self, status: int, body: Mapping[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def running_token_issuer(**options: Any) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(**options).start()
    try:
        yield issuer
    finally:
        issuer.stop()
