"""The dashboard beside the API on one port: ``/ui`` goes to the dashboard, everything else to the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portwarden.web.app import PREFIX, Dashboard, StartResponse
from portwarden.web.client import InProcessTransport, WsgiApp


class DashboardMount:
    """A WSGI app serving the dashboard under ``/ui`` and the API for every other path.

    The dashboard calls the API through ``api`` itself (in-process, with the signed-in user's
    credentials), so it sees exactly what any other client of this server would.
    """

    def __init__(self, api: WsgiApp, dashboard: Dashboard | None = None) -> None:
        self.api = api
        self.dashboard = dashboard or Dashboard(InProcessTransport(api))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == PREFIX:
            start_response("308 Permanent Redirect", [("Location", PREFIX + "/"), ("Content-Length", "0")])
            return [b""]
        if path.startswith(PREFIX + "/"):
            return self.dashboard(environ, start_response)
        return self.api(environ, start_response)
