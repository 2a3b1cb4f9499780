"""Signed-in browser sessions, kept in the server's memory.

The cookie carries only a random session id (HttpOnly, SameSite=Strict, Secure over HTTPS); the
credentials the dashboard calls the API with stay on the server, so a stolen page or script never
sees them. Each session has its own CSRF token, which every state-changing form sends back.
Sessions end on logout, after ``idle_seconds`` without a request, after ``max_seconds`` in all, or
at the first API call the credentials no longer pass (a changed password, a disabled account).
A restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from portwarden.web.client import BasicCredentials


@dataclass
class Session:
    session_id: str = field(repr=False)
    username: str
    account: str
    is_admin: bool
    csrf_token: str = field(repr=False)
    credentials: BasicCredentials | None = field(repr=False)
    created: float
    last_seen: float

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token.encode(), str(token).encode())


class SessionStore:
    def __init__(
        self,
        *,
        idle_seconds: float = 3600.0,
        max_seconds: float = 12 * 3600.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._idle = idle_seconds
        self._max_age = max_seconds
        self._max_sessions = max_sessions
        self._clock = clock
        self._lock = threading.Lock()

    def create(
        self, username: str, account: str, is_admin: bool, credentials: BasicCredentials | None
    ) -> Session:
        now = self._clock()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            username=username,
            account=account,
            is_admin=is_admin,
            csrf_token=secrets.token_urlsafe(32),
            credentials=credentials,
            created=now,
            last_seen=now,
        )
        with self._lock:
            if len(self._sessions) >= self._max_sessions:
                self._expire(now)
            if len(self._sessions) >= self._max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                self._sessions.pop(oldest.session_id, None)
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self._idle or now - session.created > self._max_age:
                self._sessions.pop(session_id, None)
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for key, session in list(self._sessions.items()):
            if now - session.last_seen > self._idle or now - session.created > self._max_age:
                self._sessions.pop(key, None)
