"""One boto3 client per adapter, built on first use and shared by the threads that use the adapter.

boto3 clients are thread-safe once built, but ``Session.client`` is not: two threads building one
at once may race in botocore's loaders. Each adapter therefore keeps a ``LazyClient`` that builds its
client once, under a lock, from the session given (or a new default session). A client passed in
(tests do) is used as it is. boto3 is imported only then, which keeps it out of cold starts that
never call the service.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


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
                    import boto3  # type: ignore[import-untyped]

                    options: dict[str, Any] = {}
                    if self._config is not None:
                        from botocore.config import Config  # type: ignore[import-untyped]

                        options["config"] = Config(**self._config)
                    session = self._session or boto3.session.Session()
                    self._client = session.client(
                        self._service, region_name=self._region, endpoint_url=self._endpoint_url, **options
                    )
        return self._client
