"""``portwarden serve --api-url``: the dashboard alone, in front of a remote Portwarden API.

Against another ``portwarden serve`` the browser signs in with that server's accounts (their
credentials pass through to it). Against an API Gateway stage with IAM authorization a browser
cannot sign requests, so the dashboard signs every API call with the operator's AWS credentials
(SigV4) and the browser signs in to the dashboard with an operator password instead: keep such a
dashboard on 127.0.0.1 (or behind your own TLS proxy), since whoever signs in acts as the operator.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from portwarden.web.app import Dashboard, OperatorSignIn, api_account_sign_in
from portwarden.web.client import HttpTransport
from portwarden.web.mount import DashboardMount

logger = logging.getLogger(__name__)


def remote_dashboard(
    api_url: str, *, aws_iam: bool, operator_password: str | None, verify_tls: bool = True
) -> tuple[DashboardMount, str | None]:
    """The dashboard app for a remote API, and the operator password when one was generated."""
    generated = None
    if aws_iam:
        from portwarden.adapters.aws.sigv4 import ExecuteApiSigner

        transport = HttpTransport(api_url, signer=ExecuteApiSigner(), verify=verify_tls)
        if not operator_password:
            operator_password = generated = secrets.token_urlsafe(18)
        dashboard = Dashboard(transport, sign_in=OperatorSignIn(operator_password))
    else:
        transport = HttpTransport(api_url, verify=verify_tls)
        dashboard = Dashboard(transport, sign_in=api_account_sign_in)
    return DashboardMount(_no_local_api, dashboard), generated


def _no_local_api(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = b"this server only serves the dashboard (/ui/); the API is remote\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def serve_remote(
    host: str,
    port: int,
    api_url: str,
    *,
    aws_iam: bool,
    operator_password: str | None,
    threads: int = 8,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard for ``api_url`` until SIGINT or SIGTERM."""
    from waitress.server import create_server

    app, generated = remote_dashboard(api_url, aws_iam=aws_iam, operator_password=operator_password)
    if generated is not None:
        announce(f"dashboard operator password (shown once): {generated}")
    server: Any = create_server(app, host=host, port=port, threads=threads, ident="portwarden")
    stop = threading.Event()

    def shut_down(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: shutting down", signum)
        stop.set()
        server.close()

    previous = {sig: signal.signal(sig, shut_down) for sig in (signal.SIGINT, signal.SIGTERM)}
    announce(f"serving the dashboard for {api_url} on http://{host}:{server.effective_port}/ui/")
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        announce("stopped")
