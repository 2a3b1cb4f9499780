"""The dashboard in front of a remote API over HTTP: the API's accounts passed through, or an
operator password with every API call signed (as for an API Gateway stage)."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portwarden.serve.remote import remote_dashboard
from portwarden.web.app import Dashboard, OperatorSignIn
from portwarden.web.client import HttpTransport
from portwarden.web.mount import DashboardMount
from tests.unit.api.support import ADMIN_PASSWORD, serve_harness
from tests.unit.web.support import Browser


def _run_until_closed(server: Any) -> None:
    # waitress's loop ends with an error when the socket is closed under it at teardown.
    with contextlib.suppress(OSError, ValueError):
        server.run()


@pytest.fixture
def remote_api(tmp_path: Path) -> Iterator[str]:
    """A real ``portwarden serve`` API on 127.0.0.1 (waitress), the image list seeded with one image."""
    from waitress.server import create_server

    with serve_harness(tmp_path / "home") as harness:
        harness.push("team/app", "1")
        assert harness.admin.post("/v1/images", {"tag": "registry.test:5000/team/app:1"}).status == 200
        server: Any = create_server(harness.admin.app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=_run_until_closed, args=(server,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.effective_port}/v1"
        finally:
            server.close()
            thread.join(timeout=10)


def test_remote_api_accounts_pass_through(remote_api: str) -> None:
    app, generated = remote_dashboard(remote_api, aws_iam=False, operator_password=None)
    assert generated is None
    browser = Browser(app)
    token = browser.get("/ui/login").csrf()
    wrong = browser.post("/ui/login", {"username": "admin", "password": "wrong", "csrf_token": token})
    assert wrong.status == 401
    assert browser.sign_in("admin", ADMIN_PASSWORD).status == 303
    listing = browser.get("/ui/images")
    assert listing.status == 200 and "registry.test:5000/team/app:1" in listing.text
    # Only the dashboard is served here: the API stays where it is.
    assert browser.get("/v1/images").status == 404


def test_operator_sign_in_with_signed_api_calls(remote_api: str) -> None:
    signed: list[str] = []

    def signer(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        # Stands in for SigV4: the remote API here authenticates with Basic instead.
        signed.append(f"{method} {url}")
        token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    dashboard = Dashboard(HttpTransport(remote_api, signer=signer), sign_in=OperatorSignIn("operator-pw-1"))
    browser = Browser(DashboardMount(lambda _e, _s: [], dashboard))
    token = browser.get("/ui/login").csrf()
    assert (
        browser.post("/ui/login", {"username": "ops", "password": "nope", "csrf_token": token}).status == 401
    )
    assert browser.sign_in("ops", "operator-pw-1").status == 303
    listing = browser.get("/ui/images")
    assert "registry.test:5000/team/app:1" in listing.text
    assert any(call.startswith("GET ") and "/v1/summaries/images" in call for call in signed)
    session = next(iter(dashboard.sessions._sessions.values()))
    assert session.credentials is None and session.account == "admin"


def test_operator_password_is_generated_when_not_given(remote_api: str) -> None:
    _app, generated = remote_dashboard(remote_api, aws_iam=True, operator_password=None)
    assert generated is not None and len(generated) >= 20
    _app, kept = remote_dashboard(remote_api, aws_iam=True, operator_password="mine")
    assert kept is None
