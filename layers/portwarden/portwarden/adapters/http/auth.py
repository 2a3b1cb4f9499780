"""Registry authentication building blocks: ``WWW-Authenticate`` challenges and bearer tokens.

Credentials themselves (``RegistryCredential``, host normalization) are core vocabulary, in
``portwarden.core.credentials``; the ``CredentialSource`` port is in ``portwarden.core.ports``.

The registry client (``registry.py``) drives the flow; this module holds the pieces that need no
network, so they can be tested on their own.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuthChallenge:
    """One challenge from a ``WWW-Authenticate`` header: a scheme and its parameters (names lowercased)."""

    scheme: str
    params: dict[str, str]

    @property
    def is_bearer(self) -> bool:
        return self.scheme.lower() == "bearer"

    @property
    def is_basic(self) -> bool:
        return self.scheme.lower() == "basic"

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def parse_www_authenticate(header: str) -> list[AuthChallenge]:
    """Parse RFC 7235 challenges: ``Bearer realm="https://a/token",service="reg",scope="repo:x:pull"``.

    Values may be quoted (with backslash escapes, and commas inside quotes, as in multi-scope
    ``scope="repository:a:pull,push"``) or bare tokens. Several challenges may share one header.
    Anything unparsable ends the parse; what was understood so far is returned.
    """
    challenges: list[AuthChallenge] = []
    pos = 0
    length = len(header)
    current: AuthChallenge | None = None
    while pos < length:
        pos = _skip_spaces(header, pos)
        if pos < length and header[pos] == ",":
            pos += 1
            continue
        token = _TOKEN_RE.match(header, pos)
        if token is None:
            break
        word = token.group(0)
        after = _skip_spaces(header, token.end())
        if after < length and header[after] == "=" and current is not None:
            pos = _skip_spaces(header, after + 1)
            value, pos = _read_value(header, pos)
            current.params[word.lower()] = value
            continue
        # A token not followed by "=" starts a new challenge (the scheme name).
        current = AuthChallenge(scheme=word, params={})
        challenges.append(current)
        pos = token.end()
    return challenges


def _read_value(header: str, pos: int) -> tuple[str, int]:
    if pos < len(header) and header[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < len(header):
            char = header[pos]
            if char == "\\" and pos + 1 < len(header):
                out.append(header[pos + 1])
                pos += 2
                continue
            if char == '"':
                return "".join(out), pos + 1
            out.append(char)
            pos += 1
        return "".join(out), pos
    # Unquoted: RFC 7235 allows only a token, but servers send bare URLs too; read to the next
    # comma or space (which also keeps token68 "=" padding).
    end = pos
    while end < len(header) and header[end] not in ", \t":
        end += 1
    return header[pos:end], end


def pick_challenge(challenges: list[AuthChallenge]) -> AuthChallenge | None:
    """Prefer bearer (scoped, short-lived tokens) over basic when a registry offers both."""
    for challenge in challenges:
        if challenge.is_bearer and challenge.realm:
            return challenge
    for challenge in challenges:
        if challenge.is_basic:
            return challenge
    return None


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


@dataclass(frozen=True)
class BearerToken:
    value: str = field(repr=False)
    usable_until: float


class TokenCache:
    """Bearer tokens keyed by (registry host, scope), dropped shortly before they expire.

    ``refresh_margin`` keeps a token from expiring between the cache lookup and the request that
    carries it. Thread-safe: layers are fetched from a thread pool.
    """

    # The distribution token spec: a token without expires_in lives 60 seconds.
    DEFAULT_LIFETIME = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic, refresh_margin: float = 10.0) -> None:
        self._clock = clock
        self._margin = refresh_margin
        self._tokens: dict[tuple[str, str], BearerToken] = {}
        self._lock = threading.Lock()

    def get(self, registry: str, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get((registry, scope))
            if token is None:
                return None
            if self._clock() >= token.usable_until:
                del self._tokens[(registry, scope)]
                return None
            return token.value

    def put(self, registry: str, scope: str, token: str, expires_in: float | None) -> None:
        lifetime = expires_in if expires_in and expires_in > 0 else self.DEFAULT_LIFETIME
        # A lifetime shorter than the margin would never be served from the cache; such a token is
        # kept for half its life instead of being fetched again for every request.
        margin = min(self._margin, lifetime / 2)
        with self._lock:
            self._tokens[(registry, scope)] = BearerToken(
                value=token, usable_until=self._clock() + lifetime - margin
            )

    def invalidate(self, registry: str, scope: str) -> None:
        with self._lock:
            self._tokens.pop((registry, scope), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
