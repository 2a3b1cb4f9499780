"""A ``portwarden serve`` host without sockets: WSGI requests in-process, an in-memory registry, the
worker pool's analyses run on demand."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from portwarden.core.model.accounts import RegistryRecord
from portwarden.core.services.acquire import ImageAccess
from portwarden.serve.host import LocalHost
from portwarden.serve.wsgi import CredentialCache, FailureThrottle, WsgiHost
from tests.support.memory_registry import MemoryRegistry
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file

ADMIN_PASSWORD = "admin-secret-1"
REGISTRY = "registry.test:5000"

DPKG_STATUS = """Package: python3-six
Status: install ok installed
Architecture: all
Source: six
Version: 1.16.0-4
Description: six

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: zlib

"""


def debian_image(marker: str = "one") -> Any:
    """A small Debian-like image with two dpkg packages, an npm package and a marker file."""
    layer = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            file("var/lib/dpkg/status", DPKG_STATUS),
            file("app/node_modules/left-pad/package.json", '{"name": "left-pad", "version": "1.3.0"}'),
            file(f"srv/{marker}.txt", marker),
        ]
    )
    return build_image(
        [layer],
        ConfigSpec(history=({"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},)),
    )


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes


class FakeProbe:
    """Registry validation without a registry: accepts the user ``good``."""

    def __init__(self) -> None:
        self.probed: list[RegistryRecord] = []

    def __call__(self, record: RegistryRecord) -> None:
        from portwarden.core.errors import RegistryAuthError

        self.probed.append(record)
        if record.registry_user != "good":
            raise RegistryAuthError(f"{record.registry} refused the credentials")


class Client:
    def __init__(self, app: WsgiHost, username: str | None, password: str | None) -> None:
        self.app = app
        self.username = username
        self.password = password

    def as_user(self, username: str | None, password: str | None) -> Client:
        return Client(self.app, username, password)

    def call(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> Answer:
        parts = urlsplit(url)
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            # WSGI servers hand the path decoded, as here.
            "PATH_INFO": _unquote(parts.path),
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(data),
        }
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            environ["HTTP_AUTHORIZATION"] = f"Basic {token}"
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(response_headers)

        raw = b"".join(self.app(environ, start_response))
        content_type = captured["headers"].get("Content-Type", "")
        decoded = json.loads(raw) if raw and content_type.startswith("application/json") else raw
        return Answer(captured["status"], decoded, captured["headers"], raw)

    def get(self, url: str, **options: Any) -> Answer:
        return self.call("GET", url, **options)

    def post(self, url: str, body: Any = None, **options: Any) -> Answer:
        return self.call("POST", url, body, **options)

    def put(self, url: str, body: Any = None, **options: Any) -> Answer:
        return self.call("PUT", url, body, **options)

    def delete(self, url: str, **options: Any) -> Answer:
        return self.call("DELETE", url, **options)


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)


def encoded(digest: str) -> str:
    """A digest as anchore-cli puts it in a path (``quote_plus``)."""
    return quote(digest, safe="")


@dataclass
class ServeHarness:
    host: LocalHost
    registry: MemoryRegistry
    probe: FakeProbe
    admin: Client

    def run_queued(self) -> int:
        """Run every queued analysis on this thread, as a worker would; how many ran."""
        ran = 0
        while (item := self.host.store.queue.claim()) is not None:
            self.host.workers.run(item)
            ran += 1
        return ran

    def new_account(self, name: str, username: str, password: str = "user-secret-1") -> Client:  # noqa: S107
        assert self.admin.post("/v1/accounts", {"name": name}).status == 200
        assert (
            self.admin.post(f"/v1/accounts/{name}/users", {"username": username, "password": password}).status
            == 200
        )
        return self.admin.as_user(username, password)

    def push(self, repository: str, tag: str, marker: str = "one") -> str:
        return self.registry.push(REGISTRY, repository, tag, debian_image(marker))


@contextmanager
def serve_harness(home: Path) -> Iterator[ServeHarness]:
    registry = MemoryRegistry()
    probe = FakeProbe()

    def access(_account: str) -> ImageAccess:
        return ImageAccess(registry_client=lambda _ref: registry, work_dir=home / "tmp")

    host = LocalHost(home, workers=1, access=access, registry_probe=probe)
    host.bootstrap(ADMIN_PASSWORD)
    # No delay on failed logins in tests (the throttle has its own test).
    app = WsgiHost(
        host.app,
        host.store.accounts,
        cache=CredentialCache(),
        throttle=FailureThrottle(0, 0),
        sleep=lambda _s: None,
        # The response cache on, as `portwarden serve` runs: every test reading after a write checks it.
        generation=host.store.generation,
    )
    try:
        yield ServeHarness(host, registry, probe, Client(app, "admin", ADMIN_PASSWORD))
    finally:
        host.close(grace_seconds=5)
