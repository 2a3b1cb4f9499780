"""Watch mode on the local store: the rounds ``portwarden serve`` runs on intervals and
``portwarden watch run-once`` runs once.

A round, for every account: poll the watched tags and repositories (new digests and tags are added
and analyzed), report analysis status changes of subscribed tags, re-match when the published
vulnerability database differs from the one the last rematch ran against (whoever published it: this
server's own sync or a ``portwarden feeds sync`` from cron against the same PORTWARDEN_HOME),
re-evaluate when the active bundle changed or the evaluation interval passed; then every
notification is recorded as an event and enqueued for each configured channel, and what is due is
delivered. Deliveries are durable (``watch.db``): a server stopped mid-retry picks them up again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.errors import PortwardenError, VulnerabilityDatabaseError
from portwarden.core.model.accounts import ADMIN_ACCOUNT
from portwarden.core.ports import EventStore, NotificationChannel, TagDigestSource
from portwarden.core.services.images import ImageSubmission, full_tag, submit_image
from portwarden.core.services.notify import DeliveryReport, deliver_due, publish
from portwarden.core.services.rematch import AccountStores, RematchReport, reevaluate_account, rematch_account
from portwarden.core.services.watch import (
    ImageAdder,
    RegistryTagDigests,
    WatchReport,
    WatchStores,
    analysis_updates,
    poll_repositories,
    poll_tags,
)
from portwarden.core.triage.model import TriageInputs
from portwarden.core.triage.stored import stored_triage_inputs
from portwarden.core.vulns.db import VulnerabilityDb
from portwarden.core.vulns.db.fingerprints import FeedChange, feed_change
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.watch.config import NotificationSettings
from portwarden.core.watch.notifications import (
    DeliveryAttempt,
    Notification,
    NotificationType,
    synthetic_notification,
)
from portwarden.core.watch.subscriptions import add_missing_tag_subscriptions
from portwarden.serve.workers import QueueStarter

if TYPE_CHECKING:
    from portwarden.serve.host import LocalHost

logger = logging.getLogger(__name__)
WATCH_DATABASE = "watch.db"
STALE_CLAIM = timedelta(minutes=10)
Clock = Callable[[], datetime]

_REMATCHED_DB = "rematch/database"
_ACTIVE_BUNDLE = "reevaluate/bundles"
_LAST_EVALUATION = "reevaluate/at"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RoundReport:
    watch: WatchReport = field(default_factory=WatchReport)
    rematch: RematchReport | None = None
    reevaluation: RematchReport | None = None
    notifications: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    errors: list[str] = field(default_factory=list)


class LocalWatch:
    def __init__(
        self,
        store: LocalStore,
        watch_store: WatchStore,
        database: Path,
        settings: NotificationSettings,
        *,
        registry_for: Callable[[str], TagDigestSource],
        add_image_for: Callable[[str], ImageAdder],
        channels: Sequence[NotificationChannel],
        clock: Clock = _now,
    ) -> None:
        self.store = store
        self.watch_store = watch_store
        self.database = database
        self.settings = settings
        self._registry_for = registry_for
        self._add_image_for = add_image_for
        self.channels = list(channels)
        self._clock = clock
        # One rematch and one delivery pass at a time (the interval threads and a run-once may overlap).
        self._rematch_lock = threading.Lock()
        self._deliver_lock = threading.Lock()

    # ---- per account ------------------------------------------------------------------------------

    def _accounts(self) -> list[str]:
        # The admin account owns what was stored before accounts existed, even before its user does.
        names = {account.name for account in self.store.accounts.list_accounts()} | {ADMIN_ACCOUNT}
        return sorted(names)

    def _watch_stores(self, account: str) -> WatchStores:
        stores = self.store.for_account(account)
        return WatchStores(account, stores.catalog, stores.subscriptions, stores.events)

    def _account_stores(self, account: str) -> AccountStores:
        stores = self.store.for_account(account)
        return AccountStores(
            account,
            stores.catalog,
            stores.analyses,
            stores.evaluations,
            stores.policies,
            stores.subscriptions,
        )

    def _vex(self, account: str) -> TriageInputs:
        # The same statements the API's policy check applies, so a re-evaluation never contradicts it.
        return stored_triage_inputs(self.store.for_account(account).vex.list_documents())

    def _events_for(self, account: str) -> EventStore:
        return self.store.for_account(account).events

    # ---- the parts of a round -------------------------------------------------------------------------

    def poll_tags(self) -> WatchReport:
        report = WatchReport()
        for account in self._accounts():
            stores = self._watch_stores(account)
            report.merge(
                poll_tags(
                    stores, self._registry_for(account), self._add_image_for(account), clock=self._clock
                )
            )
        self.publish(report.notifications)
        return report

    def poll_repositories(self) -> WatchReport:
        report = WatchReport()
        for account in self._accounts():
            stores = self._watch_stores(account)
            report.merge(
                poll_repositories(
                    stores, self._registry_for(account), self._add_image_for(account), clock=self._clock
                )
            )
        self.publish(report.notifications)
        return report

    def analysis_updates(self) -> list[Notification]:
        notifications: list[Notification] = []
        for account in self._accounts():
            notifications.extend(
                analysis_updates(self._watch_stores(account), self.watch_store, clock=self._clock)
            )
        self.publish(notifications)
        return notifications

    def rematch_if_changed(self) -> RematchReport | None:
        """Re-match every account when the published database is not the one last re-matched against."""
        with self._rematch_lock:
            if not self.database.exists():
                return None
            try:
                db = VulnerabilityDb.open(self.database)
            except VulnerabilityDatabaseError as exc:
                logger.warning("cannot open the vulnerability database for a rematch: %s", exc)
                return None
            try:
                metadata = db.metadata()
                current = {
                    "built_at": metadata.built_at.isoformat(),
                    "fingerprints": metadata.namespace_fingerprints,
                }
                previous = self.watch_store.get_state(_REMATCHED_DB)
                if previous is not None and previous.get("built_at") == current["built_at"]:
                    return None
                change = (
                    feed_change(previous.get("fingerprints"), metadata.namespace_fingerprints or {})
                    if previous is not None and metadata.namespace_fingerprints is not None
                    else FeedChange(everything=True)
                )
                report = self._rematch(Matcher(db), change, metadata.built_at)
                # Recorded once every account is done: a crash half-way re-runs the rematch (its
                # notifications have the same ids, so nobody is told twice).
                self.watch_store.put_state(_REMATCHED_DB, current)
            finally:
                db.close()
        self.publish(report.notifications)
        logger.info(
            "rematch: %d of %d analyzed images touched by the change, %d changed, %d notifications",
            report.rematched,
            report.considered,
            report.changed,
            len(report.notifications),
        )
        return report

    def _rematch(self, matcher: Matcher, change: FeedChange, built_at: datetime) -> RematchReport:
        total = RematchReport()
        for account in self._accounts():
            report = rematch_account(
                self._account_stores(account),
                self.watch_store,
                matcher,
                change,
                db_built_at=built_at,
                vex=self._vex(account),
                clock=self._clock,
            )
            total.considered += report.considered
            total.rematched += report.rematched
            total.changed += report.changed
            total.reevaluated += report.reevaluated
            total.notifications.extend(report.notifications)
            total.errors.extend(report.errors)
        return total

    def reevaluate_if_due(self, *, force: bool = False) -> RematchReport | None:
        """Re-evaluate every account when its active bundle changed, or when the interval passed."""
        now = self._clock()
        bundles = {}
        for account in self._accounts():
            active = self.store.for_account(account).policies.active_bundle()
            bundles[account] = f"{active.bundle_id}@{active.updated_at.isoformat()}" if active else None
        previous_bundles = self.watch_store.get_state(_ACTIVE_BUNDLE) or {}
        last = self.watch_store.get_state(_LAST_EVALUATION)
        interval_over = (
            last is None
            or (now - datetime.fromisoformat(last)).total_seconds() >= self.settings.watch.policy_interval
        )
        changed_accounts = [
            account for account, bundle in bundles.items() if previous_bundles.get(account) != bundle
        ]
        accounts = self._accounts() if (force or interval_over) else changed_accounts
        if not accounts:
            return None
        built_at = self._database_built_at()
        total = RematchReport()
        for account in accounts:
            report = reevaluate_account(
                self._account_stores(account),
                db_built_at=built_at,
                vex=self._vex(account),
                clock=self._clock,
            )
            total.considered += report.considered
            total.reevaluated += report.reevaluated
            total.notifications.extend(report.notifications)
            total.errors.extend(report.errors)
        self.watch_store.put_state(_ACTIVE_BUNDLE, bundles)
        if force or interval_over:
            self.watch_store.put_state(_LAST_EVALUATION, now.isoformat())
        self.publish(total.notifications)
        return total

    def _database_built_at(self) -> datetime | None:
        try:
            with VulnerabilityDb.open(self.database) as db:
                return db.metadata().built_at
        except (VulnerabilityDatabaseError, FileNotFoundError):
            return None

    def publish(self, notifications: Sequence[Notification]) -> None:
        if notifications:
            publish(
                notifications,
                channels=self.channels,
                outbox=self.watch_store,
                events_for=self._events_for,
                clock=self._clock,
            )

    def deliver(self) -> DeliveryReport:
        with self._deliver_lock:
            # Claims far older than any attempt takes were left by a process that died mid-delivery.
            self.watch_store.release_claims(self._clock() - STALE_CLAIM)
            total = DeliveryReport()
            while True:
                report = deliver_due(
                    channels=self.channels,
                    outbox=self.watch_store,
                    retry=self.settings.retry,
                    events_for=self._events_for,
                    clock=self._clock,
                )
                total.delivered += report.delivered
                total.retrying += report.retrying
                total.failed += report.failed
                if report.delivered + report.retrying + report.failed == 0:
                    return total

    # ---- the NotificationCenter of the API ---------------------------------------------------------

    def send_test(self, account: str, notification_type: str) -> list[DeliveryAttempt]:
        """A synthetic notification of the type (marked ``"test": true``), delivered now."""
        notification = synthetic_notification(
            NotificationType(notification_type), account=account, nonce=uuid.uuid4().hex, now=self._clock()
        )
        self.publish([notification])
        self.deliver()
        return self.watch_store.attempts(notification_id=notification.notification_id)

    def deliveries(
        self, account: str, *, notification_id: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        return self.watch_store.attempts(notification_id=notification_id, account=account, limit=limit)

    # ---- one round, and the interval threads -------------------------------------------------------

    def run_once(self) -> RoundReport:
        """Everything once: tags, repositories, analysis changes, rematch, re-evaluation, delivery."""
        report = RoundReport()
        self.run_watchers(report)
        rest = self.run_once_after_watchers()
        report.rematch, report.reevaluation = rest.rematch, rest.reevaluation
        report.errors.extend(rest.errors)
        report.delivery = rest.delivery
        report.notifications = len(report.watch.notifications) + rest.notifications
        return report

    def run_watchers(self, report: RoundReport) -> None:
        """The tag and repository watchers, into ``report``."""
        for step, action in (("tag watcher", self.poll_tags), ("repository watcher", self.poll_repositories)):
            try:
                report.watch.merge(action())
            except PortwardenError as exc:
                logger.warning("%s failed: %s", step, exc)
                report.errors.append(f"{step}: {exc}")

    def run_once_after_watchers(self) -> RoundReport:
        """Analysis changes, rematch, re-evaluation, then delivery."""
        report = RoundReport()
        analysis: list[Notification] = []

        def analysis_step() -> None:
            analysis.extend(self.analysis_updates())

        def rematch_step() -> None:
            report.rematch = self.rematch_if_changed()

        def policy_step() -> None:
            report.reevaluation = self.reevaluate_if_due()

        for step, action in (
            ("analysis updates", analysis_step),
            ("rematch", rematch_step),
            ("policy re-evaluation", policy_step),
        ):
            try:
                action()
            except PortwardenError as exc:
                # One failing step never keeps the others (and the delivery) from running.
                logger.warning("%s failed: %s", step, exc)
                report.errors.append(f"{step}: {exc}")
        report.notifications = (
            len(analysis)
            + len(report.rematch.notifications if report.rematch else [])
            + len(report.reevaluation.notifications if report.reevaluation else [])
        )
        report.delivery = self.deliver()
        return report

    def start(
        self, stop: threading.Event, *, rematch_check: float = 5.0, delivery: float = 1.0
    ) -> list[threading.Thread]:
        """Threads running each part on its interval until ``stop`` is set."""
        loops: list[tuple[str, float, Callable[[], object]]] = [
            ("tags", self.settings.watch.tag_interval, self.poll_tags),
            ("repositories", self.settings.watch.repo_interval, self.poll_repositories),
            ("analysis", min(delivery * 2, 5.0), self.analysis_updates),
            ("rematch", rematch_check, self.rematch_if_changed),
            ("policy", min(rematch_check * 6, 60.0), self.reevaluate_if_due),
            ("delivery", delivery, self.deliver),
        ]
        threads = []
        for name, interval, action in loops:
            thread = threading.Thread(
                target=_every,
                args=(name, interval, action, stop),
                name=f"portwarden-watch-{name}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        return threads


def _every(name: str, interval: float, action: Callable[[], object], stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            action()
        except Exception:
            # A bug in one round must not end the loop: logged, and the next round runs.
            logger.exception("watch %s round failed", name)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def for_host(
    local: LocalHost, settings: NotificationSettings, channels: Sequence[NotificationChannel]
) -> LocalWatch:
    """A LocalWatch over ``portwarden serve``'s host: its store, registry access and analysis queue."""

    def registry_for(account: str) -> TagDigestSource:
        client_for = local.access(account).registry_client
        if client_for is None:
            raise PortwardenError("no registry access is configured")
        return RegistryTagDigests(client_for)

    def add_image_for(account: str) -> ImageAdder:
        def add(tag: str, digest: str | None, *, autosubscribe: bool | None) -> None:
            stores = local.store.for_account(account)
            submit_image(
                ImageSubmission(tag=tag, digest=digest, autosubscribe=bool(autosubscribe)),
                account=account,
                access=local.access(account),
                catalog=stores.catalog,
                subscriptions=stores.subscriptions if autosubscribe is not None else None,
                starter=QueueStarter(local.store, account, local.workers),
            )
            if autosubscribe is None:
                add_missing_tag_subscriptions(stores.subscriptions, full_tag(tag), _now())

        return add

    return LocalWatch(
        local.store,
        WatchStore(local.home / WATCH_DATABASE),
        local.feeds.database,
        settings,
        registry_for=registry_for,
        add_image_for=add_image_for,
        channels=channels,
    )


def run_once(local: LocalHost, watch: LocalWatch) -> RoundReport:
    """One round for cron: watchers, the analyses they queued (run here, to the end), then analysis
    changes, rematch, re-evaluation and delivery."""
    report = RoundReport()
    watch.run_watchers(report)
    while (item := local.store.queue.claim()) is not None:
        local.workers.run(item)
    rest = watch.run_once_after_watchers()
    report.rematch, report.reevaluation = rest.rematch, rest.reevaluation
    report.errors.extend(rest.errors)
    report.delivery = rest.delivery
    report.notifications = len(report.watch.notifications) + rest.notifications
    return report
