"""Vulnerability database build time and size, from the shared OSV sample archives.

Usage: python bench/vulndb_build.py [--rounds 3]

Syncs ``feeds-sample/osv/PyPI/all.zip`` and ``feeds-sample/osv/Go/all.zip`` (about 7,000 OSV records)
through the real sync service (``file://`` URLs, so no network), into a fresh database each round,
and prints the best build time. Then estimates the size of a database holding every OSV ecosystem
from the measured bytes per record.
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

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "feeds-sample" / "osv"

# Records per OSV ecosystem, rounded (shared/reference/feeds.md and osv.dev's published counts, late
# 2025). They are estimates, which is why the result is one too; npm is dominated by MAL-* records.
ESTIMATED_RECORDS = {
    "PyPI": 17_000,
    "npm": 200_000,
    "Maven": 6_000,
    "Go": 4_300,
    "RubyGems": 2_000,
    "crates.io": 2_000,
    "NuGet": 1_000,
    "Packagist": 5_000,
    "Debian": 60_000,
    "Alpine": 30_000,
    "Ubuntu": 80_000,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = [
        FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "PyPI" / "all.zip").as_uri()),
        FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "Go" / "all.zip").as_uri()),
    ]
    best = float("inf")
    work = Path(tempfile.mkdtemp(prefix="vulndb-bench-"))
    try:
        for round_number in range(args.rounds):
            database = work / f"round-{round_number}" / "vulnerability.db"
            fetcher = HttpFeedFetcher(work / "downloads")
            started = time.perf_counter()
            result = sync_feeds(sources, fetcher, database)
            elapsed = time.perf_counter() - started
            best = min(best, elapsed)
            documents = sum(outcome.record_count for outcome in result.outcomes)
            affected = result.metadata.record_counts["affected"]
            size = database.stat().st_size
            print(f"round {round_number + 1}: {elapsed:.2f}s, {documents} records, {affected} affected rows")
        per_record = size / documents
        print(f"build (PyPI + Go OSV archives, {documents} records): best {best:.2f}s of {args.rounds}")
        print(f"database size: {size / 1e6:.1f} MB, {per_record:.0f} bytes per record")
        total_records = sum(ESTIMATED_RECORDS.values())
        print(
            f"estimated size with every OSV ecosystem ({total_records:,} records): "
            f"{total_records * per_record / 1e9:.2f} GB"
        )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
