"""A tiny HTTP server on 127.0.0.1 that plays scripted responses, for failure-path tests.

Each path has a list of responses served in order; the last one repeats, so a script is always
finite. ``ScriptedResponse(drop=True)`` closes the connection without answering (a connection
error for the client); ``stall_seconds`` answers late and ``trickle_seconds`` sends the body one
byte at a time (a silent or trickling registry). Every request is recorded with its headers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.support.loopback import LoopbackServer


@dataclass(frozen=True)
class ScriptedResponse:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False
    # A slow or silent server: wait this long before answering at all, and between body bytes.
    stall_seconds: float = 0.0
    trickle_seconds: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]


Route = Sequence[ScriptedResponse] | Callable[[RecordedRequest], ScriptedResponse]


class ScriptedHttpServer:
    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self._served: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loopback = LoopbackServer("scripted-http")

    def start(self) -> ScriptedHttpServer:
        owner = self

        class Handler(_ScriptedHandler):
            server_owner = owner

        self._loopback.start(Handler)
        return self

    def stop(self) -> None:
        self._loopback.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._loopback.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def next_response(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self._requests.append(request)
            route = self.routes.get(request.path)
            if route is None:
                return ScriptedResponse(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such path"}]}')
            if callable(route):
                return route(request)
            index = self._served.get(request.path, 0)
            self._served[request.path] = index + 1
            return route[min(index, len(route) - 1)]


class _ScriptedHandler(BaseHTTPRequestHandler):
    server_owner: ScriptedHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        request = RecordedRequest(method, parts.path, parts.query, dict(self.headers.items()))
        response = self.server_owner.next_response(request)
        if response.stall_seconds:
            time.sleep(response.stall_seconds)
        if response.drop:
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method == "HEAD":
            return
        if not response.trickle_seconds:
            self.wfile.write(response.body)
            return
        try:
            for position in range(len(response.body)):
                self.wfile.write(response.body[position : position + 1])
                self.wfile.flush()
                time.sleep(response.trickle_seconds)
        except OSError:  # the client gave up and closed the connection: so does the server
            self.close_connection = True


@contextmanager
def scripted_server(routes: Mapping[str, Route] | None = None) -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer(routes).start()
    try:
        yield server
    finally:
        server.stop()
