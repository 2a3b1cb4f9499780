"""What checking a previous database's pages costs a feed sync.

Usage: python bench/vulndb_integrity.py [--rounds 5] [--copies 8]

A sync runs SQLite's quick integrity check over the previous database before copying rows out of it.
This builds a database from the PyPI and Go OSV samples in ``tests/fixtures`` (``file://`` URLs, no
network), then syncs it ``--copies`` more times from renamed copies of the same archives so that the
file grows, and prints the best check time and throughput over ``--rounds`` (the file is in the page
cache: the figure is the CPU cost; a cold read adds the disk's own read time).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import FeedKind
from portwarden.core.vulns.db.reader import integrity_problem

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "feeds-sample" / "osv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sources = []
        for copy in range(args.copies + 1):
            for ecosystem in ("PyPI", "Go"):
                # Each copy is another source (another URL): its rows are stored again.
                target = root / "mirror" / f"{ecosystem}-{copy}" / "all.zip"
                target.parent.mkdir(parents=True)
                shutil.copy(SAMPLE / ecosystem / "all.zip", target)
                sources.append(FeedSource(kind=FeedKind.OSV, url=target.as_uri()))
        database = root / "db" / "vulnerability.db"
        sync_feeds(sources, HttpFeedFetcher(root / "work"), database)
        size = database.stat().st_size
        best = float("inf")
        for _ in range(args.rounds):
            started = time.perf_counter()
            problem = integrity_problem(database)
            best = min(best, time.perf_counter() - started)
            assert problem is None, problem
        rate = size / 1e6 / best
        print(f"database {size / 1e6:.1f} MB: quick_check best {best * 1000:.0f} ms, {rate:.0f} MB/s")


if __name__ == "__main__":
    main()
