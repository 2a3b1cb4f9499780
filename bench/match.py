"""Matching time: 1,000 packages against a database built from the shared OSV samples.

Usage: python bench/match.py [--packages 1000] [--rounds 5] [--known-share 1.0] [--fresh-processes 5]

Builds a database from ``feeds-sample/osv/{PyPI,Go}/all.zip`` and the Debian tracker excerpt (not
timed), opens it, then matches one image's worth of packages: language packages named after packages
the database knows (so most lookups find advisories and evaluate ranges), plus Debian packages with
source names. ``--known-share`` is the share of language packages named after a package the database
has advisories for (1.0, the default, is the worst case: every lookup finds advisories); the others
get names no advisory mentions, as most packages of a real image do. Prints the first match on a
freshly opened database (cold caches) and the following rounds, as wall-clock and CPU time (the CPU
figure is the stable one on a shared machine). The first match is also measured in
``--fresh-processes`` new interpreters (each opens the database and matches once: every cache, the
process-wide ones included, starts cold), reported as best and median CPU time, which a busy machine
disturbs far less than one sample.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import FeedKind, VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "feeds-sample"
VERSIONS = (
    "0.1.0",
    "1.0.0",
    "1.2.3",
    "2.0.0",
    "2.5.1",
    "3.1.4",
    "4.0.0",
    "v0.0.0-20200101000000-abcdefabcdef",
)


def packages_for(db: VulnerabilityDb, count: int, known_share: float = 1.0) -> list[Package]:
    rng = random.Random(42)
    names = {
        namespace: sorted(
            {
                name
                for (name,) in db._db.execute(
                    "SELECT package_name FROM affected WHERE namespace = ?", (namespace,)
                )
            }
        )
        for namespace in ("pypi", "go")
    }
    packages: list[Package] = []
    for index in range(count):
        if index % 10 == 9:
            source = rng.choice(["openssl", "zlib", "glibc", "curl", "libxml2", "systemd"])
            packages.append(
                Package(
                    name=f"lib{source}{index}",
                    version="1.0-1",
                    type=PackageType.DEB,
                    found_by="bench",
                    metadata={"source_name": source, "source_version": "1.0-1"},
                )
            )
            continue
        namespace = "pypi" if index % 2 else "go"
        package_type = PackageType.PYTHON if namespace == "pypi" else PackageType.GO_MODULE
        known = rng.random() < known_share
        packages.append(
            Package(
                name=rng.choice(names[namespace]) if known else f"unlisted-package-{index}",
                version=rng.choice(VERSIONS),
                type=package_type,
                found_by="bench",
            )
        )
    return packages


def first_match_cpu(database: Path, count: int, known_share: float) -> float:
    """CPU seconds of the first match on a freshly opened database, in this process."""
    with VulnerabilityDb.open(database) as db:
        packages = packages_for(db, count, known_share)
    with VulnerabilityDb.open(database) as db:
        matcher = Matcher(db)
        cpu_started = time.process_time()
        matcher.match(packages, DISTRO)
        return time.process_time() - cpu_started


def fresh_process_samples(database: Path, args: argparse.Namespace) -> list[float]:
    samples: list[float] = []
    for _ in range(args.fresh_processes):
        command = [
            sys.executable,
            __file__,
            "--first-match-in",
            str(database),
            "--packages",
            str(args.packages),
            "--known-share",
            str(args.known_share),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        samples.append(json.loads(output)["cpu"])
    return samples


DISTRO = Distro(id="debian", version_id="12")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--known-share", type=float, default=1.0)
    parser.add_argument("--fresh-processes", type=int, default=5)
    # Internal: one fresh-process sample against an already built database.
    parser.add_argument("--first-match-in", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_match_in is not None:
        print(json.dumps({"cpu": first_match_cpu(args.first_match_in, args.packages, args.known_share)}))
        return
    work = Path(tempfile.mkdtemp(prefix="match-bench-"))
    try:
        database = work / "vulnerability.db"
        sources = [
            FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "osv" / "PyPI" / "all.zip").as_uri()),
            FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "osv" / "Go" / "all.zip").as_uri()),
            FeedSource(
                kind=FeedKind.DEBIAN, url=(SAMPLE / "debian" / "vunnel-fixtures" / "debian.json").as_uri()
            ),
        ]
        sync_feeds(sources, HttpFeedFetcher(work / "downloads"), database)
        with VulnerabilityDb.open(database) as db:
            packages = packages_for(db, args.packages, args.known_share)
        # Building the database left garbage-collector work due in this process: settle it first, so
        # that a full collection it owes does not land inside the timed match.
        gc.collect()
        with VulnerabilityDb.open(database) as db:
            matcher = Matcher(db)
            started, cpu_started = time.perf_counter(), time.process_time()
            matches = matcher.match(packages, DISTRO)
            cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            timings, cpu_timings = [], []
            for _ in range(args.rounds):
                started, cpu_started = time.perf_counter(), time.process_time()
                matcher.match(packages, DISTRO)
                timings.append(time.perf_counter() - started)
                cpu_timings.append(time.process_time() - cpu_started)
        fresh = fresh_process_samples(database, args)
        print(f"{len(packages)} packages, {len(matches)} matches")
        print(
            "first match on a freshly opened database: "
            f"{cold * 1000:.1f} ms wall, {cold_cpu * 1000:.1f} ms CPU"
        )
        if fresh:
            print(
                f"first match in {len(fresh)} fresh processes: best {min(fresh) * 1000:.1f} ms CPU, "
                f"median {statistics.median(fresh) * 1000:.1f} ms CPU"
            )
        if timings:
            print(
                f"warm: best {min(timings) * 1000:.1f} ms wall / {min(cpu_timings) * 1000:.1f} ms CPU, "
                f"median {sorted(timings)[len(timings) // 2] * 1000:.1f} ms wall"
            )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
