"""``portwarden watch``: watch mode without a server (one round, for cron) and the delivery log."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

watch_app = typer.Typer(help="Watched tags and repositories, rematch after feed syncs, notifications.")


@watch_app.command("run-once")
def run_once(
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="General webhook (replaces webhooks.general.url).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """One round: poll watched tags and repositories (new digests and tags are added and analyzed
    here), report analysis changes, re-match if the vulnerability database changed since the last
    rematch, re-evaluate if the active bundle changed or the interval passed, deliver notifications.

    Deliveries that fail are retried by the next run (within webhooks.notification_retry_timeout).
    """
    from portwarden.cli.settings import LocalSettings
    from portwarden.serve.host import LocalHost
    from portwarden.serve.watch_config import channels_for, load_settings
    from portwarden.serve.watching import for_host
    from portwarden.serve.watching import run_once as run_round

    if output not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="--output")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    home = LocalSettings().home
    settings, topic = load_settings(home, webhook_url=webhook_url)
    local = LocalHost(home, workers=1)
    try:
        watch = for_host(local, settings, channels_for(settings, topic))
        report = run_round(local, watch)
        pending = watch.watch_store.pending()
    finally:
        local.close(0)
    errors = report.watch.errors + report.errors
    summary: dict[str, int] = {
        "tags_and_repositories_checked": report.watch.checked,
        "changed": report.watch.changed,
        "images_added": report.watch.added,
        "rematched": report.rematch.rematched if report.rematch else 0,
        "rematch_changed": report.rematch.changed if report.rematch else 0,
        "reevaluated": report.reevaluation.reevaluated if report.reevaluation else 0,
        "notifications": report.notifications,
        "delivered": report.delivery.delivered,
        "retrying": report.delivery.retrying,
        "failed": report.delivery.failed,
        "pending": pending,
    }
    if output == "json":
        typer.echo(json.dumps({**summary, "errors": errors}, indent=2))
    else:
        for key, value in summary.items():
            typer.echo(f"{key.replace('_', ' ')}: {value}")
        for error in errors:
            typer.echo(f"error: {error}", err=True)
    if report.delivery.failed:
        raise typer.Exit(1)


@watch_app.command("deliveries")
def deliveries(
    notification_id: Annotated[
        str | None, typer.Option("--notification-id", help="Only this notification.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
) -> None:
    """The delivery log, newest first: every attempt of every notification and its outcome (JSON)."""
    from portwarden.adapters.local.watch_store import WatchStore
    from portwarden.cli.settings import LocalSettings
    from portwarden.serve.watching import WATCH_DATABASE

    store = WatchStore(LocalSettings().home / WATCH_DATABASE)
    try:
        attempts = store.attempts(notification_id=notification_id, limit=limit)
    finally:
        store.close()
    typer.echo(json.dumps([attempt.model_dump(mode="json") for attempt in attempts], indent=2))
