"""What the API needs from its host, and how routes reach it.

The API depends on ports only. The host that builds the app (the Lambda function through
``portwarden.runtime.wiring``, ``portwarden serve`` with the local stores and its worker queue, a
test with fakes) passes ``create_app`` a *provider*: a function returning an ``ApiDependencies``.
The provider is called once per request, so a host may build its adapters lazily and cache them
(the Lambda wiring does, per warm container) or hand out the same object every time.

Routes are declared on module-level routers shared by every app, so the dependencies of the app
serving the current request are carried in a context variable set around each request: two apps
in one process, or one app on several server threads, never see each other's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from portwarden.core.ports import (
    AccountStore,
    AnalysisStarter,
    AnalysisStore,
    CatalogStore,
    EvaluationStore,
    EventLog,
    FeedMetadataStore,
    ImageRemoval,
    ImportStore,
    PolicyStore,
    PrincipalStore,
    RegistryStore,
    SubscriptionStore,
    VexStore,
)

# Types of fields and signatures only: the services behind them load when a route uses them.
if TYPE_CHECKING:
    from portwarden.core.model.accounts import RegistryRecord
    from portwarden.core.services.acquire import ImageAccess
    from portwarden.core.services.phases import OpenDatabase
    from portwarden.core.watch.notifications import DeliveryAttempt


class ImageCatalog(CatalogStore, ImageRemoval, Protocol):
    """The catalog as the API uses it: images can also be deleted."""


class FeedService(Protocol):
    """The vulnerability feeds as ``/system/feeds`` shows and drives them (the host owns the database)."""

    def list_feeds(self) -> list[dict[str, Any]]:
        """Anchore's FeedMetadata records."""
        ...

    def sync(self, *, flush: bool = False) -> list[dict[str, Any]]:
        """Sync now (locally) or start a sync (AWS); Anchore's FeedSyncResult records."""
        ...

    def set_enabled(self, feed: str, group: str | None, enabled: bool) -> dict[str, Any]:
        """Enable or disable a feed or one of its groups; the updated feed or group record."""
        ...

    def delete(self, feed: str, group: str | None) -> dict[str, Any]:
        """Drop a feed's (or group's) data and disable it; the updated record."""
        ...


class NotificationCenter(Protocol):
    """Notification delivery as the API shows it: a synthetic test send, and the delivery log."""

    def send_test(self, account: str, notification_type: str) -> list[DeliveryAttempt]:
        """Send a synthetic notification of the type through every configured channel now; its attempts."""
        ...

    def deliveries(
        self, account: str, *, notification_id: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]: ...


class PolicyReevaluation(Protocol):
    """Where a change of the active bundle asks for the re-evaluation of the account's images (on AWS:
    an event that starts the Rematch state machine in re-evaluation mode; the work can outlast any
    request). ``portwarden serve`` notices bundle changes itself and needs none."""

    def request(self, account: str, *, reason: str, bundle_id: str) -> None: ...


@dataclass(frozen=True)
class ApiDependencies:
    """The ports the routes use. New route groups add the ports they need here.

    Account-owned stores are those of one account. A host serving several accounts gives
    ``accounts`` (callers must then be authenticated) and ``for_account``, which answers the
    dependencies opened for another account; a single-account host gives neither and every caller
    acts for that one account (``admin``).
    """

    catalog: CatalogStore
    analyses: AnalysisStore
    evaluations: EvaluationStore
    # None where analyses cannot be started (a read-only host): submitting then fails with 500.
    starter: AnalysisStarter | None = None
    policies: PolicyStore | None = None
    events: EventLog | None = None
    registries: RegistryStore | None = None
    subscriptions: SubscriptionStore | None = None
    feeds: FeedMetadataStore | None = None
    feed_service: FeedService | None = None
    accounts: AccountStore | None = None
    for_account: Callable[[str], ApiDependencies] | None = None
    # On API Gateway with IAM authentication: the caller's principal ARN → its account.
    principals: PrincipalStore | None = None
    # Registry access with the account's credentials (resolving tags when images are added).
    image_access: Callable[[str], ImageAccess] | None = None
    # Logs in to a registry with the given entry's credentials (``POST /registries?validate=true``).
    registry_probe: Callable[[RegistryRecord], None] | None = None
    # SBOM imports, and the database an imported image is matched against at once.
    imports: ImportStore | None = None
    vulnerability_database: Callable[[], OpenDatabase | None] | None = None
    # The account's VEX documents, applied to its vulnerability reports and checks.
    vex: VexStore | None = None
    # Watch-mode notifications: test sends and the delivery log.
    notifications: NotificationCenter | None = None
    # Asked to re-evaluate the account's images when its active bundle changed (AWS).
    reevaluation: PolicyReevaluation | None = None


DependencyProvider = Callable[[], ApiDependencies]

_current: ContextVar[DependencyProvider | None] = ContextVar("portwarden_api_dependencies", default=None)
_event: ContextVar[Mapping[str, Any] | None] = ContextVar("portwarden_api_event", default=None)


@contextmanager
def serving_with(
    provider: DependencyProvider | None, event: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Make ``provider`` the one ``dependencies()`` asks while the current request is served."""
    token = _current.set(provider)
    event_token = _event.set(event)
    try:
        yield
    finally:
        _event.reset(event_token)
        _current.reset(token)


def current_event() -> Mapping[str, Any]:
    """The proxy event of the request being served."""
    event = _event.get()
    if event is None:
        raise RuntimeError("no request is being served")
    return event


def dependencies() -> ApiDependencies:
    """The dependencies of the app serving the current request."""
    provider = _current.get()
    if provider is None:
        # A host wiring mistake (a bug), never the client's: it answers 500.
        raise RuntimeError("this API app was built without dependencies: create_app(provider)")
    return provider()
