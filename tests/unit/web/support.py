"""A browser without a browser: cookies, forms and CSRF tokens against the dashboard's WSGI app."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from portwarden.web.mount import DashboardMount
from tests.unit.api.support import ADMIN_PASSWORD, ServeHarness, serve_harness

HOSTILE = "<script>alert(1)</script>"


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        assert found is not None, "no CSRF token on the page"
        return found.group(1)


class Browser:
    def __init__(self, app: DashboardMount) -> None:
        self.app = app
        self.jar: dict[str, str] = {}

    def request(
        self, method: str, url: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Page:
        parts = urlsplit(url)
        data = urlencode(form or {}).encode() if form is not None else b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(data)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(data),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "localhost",
        }
        if self.jar:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = response_headers

        body = b"".join(self.app(environ, start_response))
        cookies = [value for name, value in captured["headers"] if name.lower() == "set-cookie"]
        for raw in cookies:
            parsed = SimpleCookie(raw)
            for key, morsel in parsed.items():
                if morsel["max-age"] == "0":
                    self.jar.pop(key, None)
                else:
                    self.jar[key] = morsel.value
        return Page(captured["status"], dict(captured["headers"]), cookies, body.decode("utf-8", "replace"))

    def get(self, url: str, **options: Any) -> Page:
        return self.request("GET", url, **options)

    def post(self, url: str, form: dict[str, str], **options: Any) -> Page:
        return self.request("POST", url, form, **options)

    def sign_in(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> Page:
        form = self.get("/ui/login")
        return self.post("/ui/login", {"username": username, "password": password, "csrf_token": form.csrf()})


@dataclass
class Site:
    harness: ServeHarness
    app: DashboardMount

    def browser(self) -> Browser:
        return Browser(self.app)


@contextmanager
def dashboard_site(home: Path) -> Iterator[Site]:
    with serve_harness(home) as harness:
        yield Site(harness, DashboardMount(harness.admin.app))
