"""``portwarden serve``: the API app on the local store, behind waitress, with the analysis workers.

``LocalHost`` wires the one API app to the SQLite store (every account), the durable queue and its
workers, the local feeds and registry access; ``serve`` runs it behind waitress (a production WSGI
server: a bounded thread pool, HTTP/1.1 keep-alive, request size limits) until SIGINT/SIGTERM, then
shuts down gracefully: the listener closes, running analyses get a grace period, anything still
unfinished stays queued for the next start.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.api.app import create_app
from portwarden.api.dependencies import ApiDependencies, NotificationCenter
from portwarden.core.model.accounts import ADMIN_ACCOUNT, RegistryRecord
from portwarden.core.ports import FeedFetcher
from portwarden.core.services.accounts import ensure_admin
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.sync_feeds import FeedSource, default_sources
from portwarden.core.watch.config import NotificationSettings
from portwarden.serve.feeds import LocalFeeds
from portwarden.serve.process import (
    freeze_startup_objects,
    limit_queue_depth_warnings,
    log_off_request_threads,
)
from portwarden.serve.registry_access import image_access, probe_registry
from portwarden.serve.workers import AnalysisWorkers, QueueStarter
from portwarden.serve.wsgi import WsgiHost
from portwarden.web.mount import DashboardMount

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8228


class LocalHost:
    """Everything ``portwarden serve`` runs, without the HTTP server (tests drive it directly)."""

    def __init__(
        self,
        home: Path,
        *,
        workers: int = 2,
        feed_sources: Sequence[FeedSource] | None = None,
        registry_probe: Callable[[RegistryRecord], None] = probe_registry,
        max_attempts: int = 3,
        access: Callable[[str], ImageAccess] | None = None,
    ) -> None:
        self.home = home
        self.store = LocalStore(home)
        self.work_dir = home / "tmp"
        # Tests give an in-memory registry; otherwise HTTP with the account's stored credentials.
        self._access = access
        self.feeds = LocalFeeds(
            home / "db" / "vulnerability.db",
            self._fetcher,
            lambda: list(feed_sources) if feed_sources is not None else default_sources(),
            self.store.events,
        )
        self.workers = AnalysisWorkers(
            self.store, self.access, self.feeds.open_database, workers=workers, max_attempts=max_attempts
        )
        self._registry_probe = registry_probe
        # Set when watch mode runs (``serve``): the API's test sends and delivery log.
        self.notification_center: NotificationCenter | None = None
        self._dependencies: dict[str, ApiDependencies] = {}
        self._lock = threading.Lock()
        self.app = create_app(self.dependencies)

    def _fetcher(self) -> FeedFetcher:
        from portwarden.adapters.http.feeds import HttpFeedFetcher

        return HttpFeedFetcher(self.work_dir / "feeds")

    def access(self, account: str) -> ImageAccess:
        if self._access is not None:
            return self._access(account)
        registries = self.store.for_account(account).registries
        if account != ADMIN_ACCOUNT:
            return image_access(registries, self.work_dir)
        # The admin account is the machine's own user: the credentials `portwarden registry add` and
        # Docker's config hold (what the command line pulls with) apply to it after its own entries.
        from portwarden.adapters.http.credentials import build_credential_resolver
        from portwarden.cli.settings import LocalSettings

        machine = build_credential_resolver(self.home, LocalSettings().docker_config_file)
        return image_access(
            registries, self.work_dir, fallback=machine, insecure=machine.insecure_registries()
        )

    def bootstrap(self, admin_password: str | None) -> str | None:
        """Create the admin on first start (the generated password, once) and recover the queue."""
        generated = ensure_admin(self.store.accounts, admin_password)
        self.workers.recover()
        return generated

    def for_account(self, account: str) -> ApiDependencies:
        with self._lock:
            cached = self._dependencies.get(account)
            if cached is None:
                stores = self.store.for_account(account)
                cached = ApiDependencies(
                    catalog=stores.catalog,
                    analyses=stores.analyses,
                    evaluations=stores.evaluations,
                    starter=QueueStarter(self.store, account, self.workers),
                    policies=stores.policies,
                    events=stores.events,
                    registries=stores.registries,
                    subscriptions=stores.subscriptions,
                    feeds=stores.feeds,
                    feed_service=self.feeds,
                    accounts=self.store.accounts,
                    for_account=self.for_account,
                    image_access=self.access,
                    registry_probe=self._registry_probe,
                    imports=stores.imports,
                    vulnerability_database=self.feeds.open_database,
                    vex=stores.vex,
                    notifications=self.notification_center,
                )
                self._dependencies[account] = cached
            return cached

    def dependencies(self) -> ApiDependencies:
        """The host's dependencies (account ``admin``; routes open the caller's account from them)."""
        return self.for_account("admin")

    def wsgi(self) -> WsgiHost:
        return WsgiHost(self.app, self.store.accounts, generation=self.store.generation)

    def wsgi_with_dashboard(self) -> DashboardMount:
        """The API and, under ``/ui``, the web dashboard that calls it (one port)."""
        return DashboardMount(self.wsgi())

    def close(self, grace_seconds: float = 30.0) -> None:
        finished = self.workers.stop(grace_seconds)
        if not finished:
            logger.warning("analyses still running after %.0fs stay queued for the next start", grace_seconds)
        self.store.close()


def serve(
    host: str,
    port: int,
    home: Path,
    *,
    admin_password: str | None,
    workers: int = 2,
    threads: int = 16,
    feed_sources: Sequence[FeedSource] | None = None,
    feed_sync_interval: float | None = None,
    grace_seconds: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
    announce: Callable[[str], None] = print,
    watch_interval: float | None = None,
    webhook_url: str | None = None,
    watching: bool = True,
) -> None:
    """Serve until SIGINT or SIGTERM.

    With ``watching`` the watchers, the rematch after feed syncs (this server's or a cron job's), the
    policy re-evaluation and the notification delivery run beside the API (settings from
    ``config.yaml`` under ``home``; ``watch_interval`` sets the tag and repository polling interval,
    ``webhook_url`` the general webhook).
    """
    from waitress.server import create_server

    # Read first: a bad config.yaml or --webhook-url stops the start before anything listens.
    notification_settings = _watch_settings(home, watch_interval, webhook_url) if watching else None
    local = LocalHost(home, workers=workers, feed_sources=feed_sources)
    generated = local.bootstrap(admin_password)
    if generated is not None:
        # Printed once: only its hash is stored.
        announce(f"created user admin with password: {generated}")
    local.workers.start()
    server: Any = create_server(
        local.wsgi_with_dashboard(),
        host=host,
        port=port,
        threads=threads,
        ident="portwarden",
        max_request_body_size=64 * 1024 * 1024,
        channel_timeout=120,
        clear_untrusted_proxy_headers=True,
    )
    limit_queue_depth_warnings()
    # Everything start-up made (modules, the app, the server) lives as long as the process: exempt
    # from the collector's full collections, which then only scan what serving makes (see
    # serve.process). Before the watchers start, so that their first round is not frozen with it.
    freeze_startup_objects()
    stop = threading.Event()
    syncer = _feed_sync_loop(local, feed_sync_interval, stop) if feed_sync_interval else None
    watchers = _start_watching(local, stop, *notification_settings) if notification_settings else []

    def shut_down(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: shutting down", signum)
        stop.set()
        server.close()

    previous = {sig: signal.signal(sig, shut_down) for sig in (signal.SIGINT, signal.SIGTERM)}
    address = f"http://{host}:{server.effective_port}/v1"
    announce(f"serving the Portwarden API on {address}")
    announce(f"serving the dashboard on http://{host}:{server.effective_port}/ui/")
    if on_ready is not None:
        on_ready(address)
    try:
        with log_off_request_threads():
            server.run()
    except (OSError, ValueError):
        # asyncore's loop ends with an error once the socket is closed under it by the signal.
        if not stop.is_set():
            raise
    finally:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if syncer is not None:
            syncer.join(timeout=5)
        for thread in watchers:
            thread.join(timeout=5)
        local.close(grace_seconds)
        announce("stopped")


def _watch_settings(
    home: Path, watch_interval: float | None, webhook_url: str | None
) -> tuple[NotificationSettings, str | None]:
    from portwarden.serve.watch_config import load_settings

    settings, topic = load_settings(home, webhook_url=webhook_url)
    if watch_interval is not None:
        polling = {"tag_interval": watch_interval, "repo_interval": watch_interval}
        settings = settings.model_copy(update={"watch": settings.watch.model_copy(update=polling)})
    return settings, topic


def _start_watching(
    local: LocalHost, stop: threading.Event, settings: NotificationSettings, topic: str | None
) -> list[threading.Thread]:
    from portwarden.serve.watch_config import channels_for
    from portwarden.serve.watching import for_host

    watch = for_host(local, settings, channels_for(settings, topic))
    local.notification_center = watch
    logger.info(
        "watching: tags every %.0fs, repositories every %.0fs, %d notification channel(s)",
        settings.watch.tag_interval,
        settings.watch.repo_interval,
        len(watch.channels),
    )
    return watch.start(stop)


def _feed_sync_loop(local: LocalHost, interval: float, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            started = time.monotonic()
            try:
                local.feeds.sync()
                logger.info("scheduled feed sync done in %.1fs", time.monotonic() - started)
            except Exception:
                logger.exception("scheduled feed sync failed")

    thread = threading.Thread(target=loop, name="portwarden-feed-sync", daemon=True)
    thread.start()
    return thread
