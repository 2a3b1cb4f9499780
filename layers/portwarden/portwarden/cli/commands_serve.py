"""``portwarden serve``: the REST API (Anchore's v1) on the local store."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8228


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Concurrent analyses.")] = 2,
    threads: Annotated[int, typer.Option("--threads", min=1, max=256, help="HTTP worker threads.")] = 16,
    feed_source: Annotated[
        list[str],
        typer.Option(
            "--feed-source",
            help="KIND=URL (repeatable): what `POST /v1/system/feeds` syncs (default: the upstream feeds).",
        ),
    ] = [],  # noqa: B006 - typer needs a literal default
    feed_sync_interval: Annotated[
        float | None,
        typer.Option(
            "--feed-sync-interval", min=60, help="Seconds between scheduled feed syncs (off by default)."
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="Serve only the dashboard, in front of this remote Portwarden API (…/v1).",
        ),
    ] = None,
    aws_iam: Annotated[
        bool,
        typer.Option(
            "--aws-iam",
            help="With --api-url: sign API calls with your AWS credentials (an API Gateway stage); "
            "the browser signs in with PORTWARDEN_DASHBOARD_PASSWORD (generated and printed if unset).",
        ),
    ] = False,
    watch_interval: Annotated[
        float | None,
        typer.Option(
            "--watch-interval",
            min=1,
            help="Seconds between polls of watched tags and repositories (default: config.yaml, else "
            "3600 for tags and 60 for repositories, as Anchore).",
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            "--webhook-url", help="General webhook for notifications (replaces webhooks.general.url)."
        ),
    ] = None,
) -> None:
    """Serve the REST API (Anchore v1 under /v1) with HTTP Basic auth and background analyses, and
    the web dashboard under /ui/ on the same port.

    The first start creates user admin with the password in PORTWARDEN_ADMIN_PASSWORD, or generates
    one and prints it once. Watch mode runs beside it: watched tags and repositories are polled,
    stored images re-matched when the vulnerability database changes (a `portwarden feeds sync` from
    cron included), and notifications delivered (config.yaml under PORTWARDEN_HOME).
    """
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.sync_feeds import FeedSource
    from portwarden.serve.host import serve as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if aws_iam and not api_url:
        raise typer.BadParameter("--aws-iam needs --api-url", param_hint="--aws-iam")
    if api_url:
        from portwarden.serve.remote import serve_remote

        serve_remote(
            host,
            port,
            api_url,
            aws_iam=aws_iam,
            operator_password=os.environ.get("PORTWARDEN_DASHBOARD_PASSWORD") or None,
            threads=threads,
            announce=lambda line: typer.echo(line, err=True),
        )
        return
    sources = None
    if feed_source:
        try:
            sources = [FeedSource.parse(value) for value in feed_source]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--feed-source") from None
    run(
        host,
        port,
        LocalSettings().home,
        admin_password=os.environ.get("PORTWARDEN_ADMIN_PASSWORD") or None,
        workers=workers,
        threads=threads,
        feed_sources=sources,
        feed_sync_interval=feed_sync_interval,
        announce=lambda line: typer.echo(line, err=True),
        watch_interval=watch_interval,
        webhook_url=webhook_url,
    )
