"""A feed sync reports which namespaces its new database changed (what a rematch must look at), over
a real HTTP feed server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import FeedRetryPolicy, HttpFeedFetcher
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import FeedKind
from tests.support.watch_images import osv_advisory, write_osv_mirror

NPM = osv_advisory("GHSA-npm-0001", "npm", "left-pad", "1.0.1", modified="2025-01-01T00:00:00Z")
PYPI = osv_advisory("GHSA-py-0001", "PyPI", "requests", "2.1.0", modified="2025-01-01T00:00:00Z")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_sync_result_names_the_changed_namespaces(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    npm_source = FeedSource(kind=FeedKind.OSV, url=f"{base}/npm/all.zip")
    pypi_source = FeedSource(kind=FeedKind.OSV, url=f"{base}/pypi/all.zip")
    fetcher = HttpFeedFetcher(
        tmp_path / "work", retry=FeedRetryPolicy(attempts=1, base_delay=0.0), sleep=lambda _: None
    )
    database = tmp_path / "db" / "vulnerability.db"
    write_osv_mirror(root / "npm" / "all.zip", [NPM])
    write_osv_mirror(root / "pypi" / "all.zip", [PYPI])

    first = sync_feeds([npm_source, pypi_source], fetcher, database)
    assert first.change.everything  # nothing to compare with

    # Served again unchanged: nothing changed, whatever the validators said.
    assert not sync_feeds([npm_source, pypi_source], fetcher, database).change.changed

    write_osv_mirror(
        root / "pypi" / "all.zip",
        [PYPI, osv_advisory("GHSA-py-0002", "PyPI", "flask", "3.0", modified="2025-02-01T00:00:00Z")],
    )
    # HTTP dates have whole seconds: the rewritten file must not look as old as the first one.
    later = time.time() + 10
    os.utime(root / "pypi" / "all.zip", (later, later))
    changed = sync_feeds([npm_source, pypi_source], fetcher, database).change
    assert changed.namespaces == frozenset({"pypi"}) and not changed.everything and not changed.enrichment
