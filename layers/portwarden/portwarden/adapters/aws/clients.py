"""One boto3 client per adapter, built on first use and shared by the threads that use the adapter.

boto3 clients are thread-safe once built, but ``Session.client`` is not: two threads building one
at once may race in botocore's loaders. Each adapter therefore keeps a ``LazyClient`` that builds its
client once, under a lock, from the session given (or a new default session). A client passed in
(tests do) is used as it is. boto3 is imported only then, which keeps it out of cold starts that
never call the service.

Every session this module makes (and every one pynamodb makes, see ``share_loader_with_pynamodb``)
reads the service models and endpoint data through one loader for the process. A botocore session
otherwise parses them again: about 40 ms for DynamoDB's model and 70 ms for S3's, once per client
in a cold container (pynamodb makes a client per table). Sessions stay separate (credentials,
event handlers); only the parsed JSON, which botocore never changes, is shared.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

_loader_lock = threading.Lock()
_shared_loader: Any = None


def new_botocore_session() -> Any:
    """A new botocore session (its own credentials and event handlers) reading models and endpoints
    through the process's shared loader."""
    import botocore.session  # type: ignore[import-untyped]

    session = botocore.session.get_session()
    session.register_component("data_loader", _loader(session))
    return session


def new_boto3_session() -> Any:
    """``boto3.session.Session()`` over ``new_botocore_session()``."""
    import boto3  # type: ignore[import-untyped]

    return boto3.session.Session(botocore_session=new_botocore_session())


def _loader(session: Any) -> Any:
    global _shared_loader
    with _loader_lock:
        if _shared_loader is None:
            # The first session's own loader (its search path honours AWS_DATA_PATH) becomes the
            # process's. botocore's loader caches what it parsed in a dict; two threads loading the
            # same model at once parse it twice and keep one, which is harmless.
            _shared_loader = session.get_component("data_loader")
        return _shared_loader


def share_loader_with_pynamodb() -> None:
    """Make pynamodb's connections (one per table model, a botocore session per thread) use
    ``new_botocore_session``. pynamodb builds its sessions with the ``get_session`` its connection
    module imported; that name is replaced, once, by a function of the same contract."""
    from pynamodb.connection import base

    if getattr(base, "get_session", None) is not new_botocore_session:
        setattr(base, "get_session", new_botocore_session)  # noqa: B010 - a module attribute, not exported


class LazyClient:
    def __init__(
        self,
        service: str,
        client: Any | None = None,
        *,
        session: Any | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._service = service
        self._client = client
        self._session = session
        self._region = region
        self._endpoint_url = endpoint_url
        # botocore ``Config`` options (e.g. the signature version of presigned URLs).
        self._config = dict(config) if config is not None else None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    options: dict[str, Any] = {}
                    if self._config is not None:
                        from botocore.config import Config  # type: ignore[import-untyped]

                        options["config"] = Config(**self._config)
                    session = self._session or new_boto3_session()
                    self._client = session.client(
                        self._service, region_name=self._region, endpoint_url=self._endpoint_url, **options
                    )
        return self._client
