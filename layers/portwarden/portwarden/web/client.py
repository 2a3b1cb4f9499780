"""How the dashboard reaches the API: the same WSGI app in-process, or a remote server over HTTP.

Either way a call carries the signed-in user's credentials (HTTP Basic, checked by the API host as
for any client) or, against an API Gateway deployment, is signed with the operator's AWS
credentials (SigV4): a browser cannot sign IAM requests, so the dashboard does it for it.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

API_PREFIX = "/v1"


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def content_type(self) -> str:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value
        return "application/octet-stream"


class ApiError(Exception):
    """The API refused a call: its status, message and (for a bad policy bundle) every problem."""

    def __init__(self, status: int, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    @classmethod
    def of(cls, answer: ApiAnswer) -> ApiError:
        message = f"the API answered {answer.status}"
        details: tuple[str, ...] = ()
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("message") or message)
            detail = body.get("detail")
            if isinstance(detail, dict):
                found = detail.get("validation_details") or ()
                details = tuple(str(item) for item in found) if isinstance(found, list | tuple) else ()
        return cls(answer.status, message, details)


class Transport(Protocol):
    def request(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        credentials: BasicCredentials | None,
        client_address: str,
    ) -> ApiAnswer: ...


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class InProcessTransport:
    """Calls the API's WSGI app (authentication, limits and logging included) without a socket."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app

    def request(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        credentials: BasicCredentials | None,
        client_address: str,
    ) -> ApiAnswer:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            # The browser's address: the API's failed-login throttle applies to it, as to any client.
            "REMOTE_ADDR": client_address,
            "SERVER_NAME": "portwarden-dashboard",
            "SERVER_PORT": "0",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        if credentials is not None:
            environ["HTTP_AUTHORIZATION"] = credentials.header()
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(headers)

        raw = b"".join(self._app(environ, start_response))
        return ApiAnswer(captured["status"], captured["headers"], raw)


Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]


class HttpTransport:
    """A remote Portwarden API: another ``portwarden serve`` (the user's Basic credentials), or an API
    Gateway stage, whose calls ``signer`` signs with the operator's AWS credentials (SigV4)."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: Signer | None = None,
        timeout: float = 60.0,
        verify: bool = True,
    ) -> None:
        import requests

        self._base = base_url.rstrip("/")
        if self._base.endswith(API_PREFIX):
            self._base = self._base[: -len(API_PREFIX)]
        self._session = requests.Session()
        self._timeout = timeout
        self._verify = verify
        self._signer = signer

    def request(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        credentials: BasicCredentials | None,
        client_address: str,
    ) -> ApiAnswer:
        url = self._base + path + (f"?{query}" if query else "")
        headers = {"Content-Type": "application/json", "Accept": "*/*"}
        if self._signer is not None:
            headers.update(self._signer(method, url, body, headers))
        elif credentials is not None:
            headers["Authorization"] = credentials.header()
        response = self._session.request(
            method, url, data=body or None, headers=headers, timeout=self._timeout, verify=self._verify
        )
        return ApiAnswer(response.status_code, dict(response.headers), response.content)


class ApiClient:
    """JSON calls to the API as one user (or as the operator, when the transport signs them)."""

    def __init__(
        self, transport: Transport, credentials: BasicCredentials | None, client_address: str = "-"
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._client_address = client_address

    def call(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> ApiAnswer:
        pairs = [(key, _text(value)) for key, value in (query or {}).items() if value is not None]
        data = json.dumps(body).encode() if body is not None else b""
        return self._transport.request(
            method, API_PREFIX + path, urlencode(pairs), data, self._credentials, self._client_address
        )

    def json(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        answer = self.call(method, path, query, body)
        if answer.status >= 400:
            raise ApiError.of(answer)
        return answer.json()

    def get(self, path: str, **query: Any) -> Any:
        return self.json("GET", path, query)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.json("POST", path, query, body)

    def put(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.json("PUT", path, query, body)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
