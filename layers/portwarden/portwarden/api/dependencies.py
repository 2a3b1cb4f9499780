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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from portwarden.core.ports import AnalysisStarter, AnalysisStore, CatalogStore, EvaluationStore


@dataclass(frozen=True)
class ApiDependencies:
    """The ports the routes use. New route groups add the ports they need here."""

    catalog: CatalogStore
    analyses: AnalysisStore
    evaluations: EvaluationStore
    # None where analyses cannot be started (a read-only host): submitting then fails with 500.
    starter: AnalysisStarter | None = None


DependencyProvider = Callable[[], ApiDependencies]

_current: ContextVar[DependencyProvider | None] = ContextVar("portwarden_api_dependencies", default=None)


@contextmanager
def serving_with(provider: DependencyProvider | None) -> Iterator[None]:
    """Make ``provider`` the one ``dependencies()`` asks while the current request is served."""
    token = _current.set(provider)
    try:
        yield
    finally:
        _current.reset(token)


def dependencies() -> ApiDependencies:
    """The dependencies of the app serving the current request."""
    provider = _current.get()
    if provider is None:
        # A host wiring mistake (a bug), never the client's: it answers 500.
        raise RuntimeError("this API app was built without dependencies: create_app(provider)")
    return provider()
