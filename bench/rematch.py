"""Rematch and re-evaluation after a feed change: wall time and peak RSS.

1,000 stored analyses (Debian 12 base, 200 OS packages each; 10% also carry 40 Python packages, the
rest 40 npm packages) matched against a database of Debian, PyPI and npm advisories. A feed sync then
adds 25 PyPI advisories and changes the fix of 25 others: only the Python images (10%) are in the
changed namespace. Measured, in a fresh child process (its peak RSS is the figure): the rematch of
the affected images from their stored analyses plus their re-evaluation, as ``portwarden serve`` and
``watch run-once`` run it. The whole-catalogue rematch (every image) is printed for comparison.

Usage: python bench/rematch.py [--images 1000] [--share 0.1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "portwarden"))

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.services.rematch import AccountStores, rematch_account
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.db.fingerprints import feed_change
from portwarden.core.vulns.matcher import Matcher

OS_PACKAGES = 200
LANGUAGE_PACKAGES = 40
BASE = datetime(2026, 3, 1, tzinfo=UTC)


def advisory(vuln_id: str, namespace: str, name: str, version_format: str, fixed: str) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=vuln_id,
        namespace=namespace,
        source="osv",
        severity=Severity.HIGH,
        affected=(
            AffectedRange(
                namespace=namespace,
                package_name=name,
                version_format=version_format,
                ranges=(
                    VersionRange(
                        events=(
                            RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                            RangeEvent(kind=EventKind.FIXED, version=fixed),
                        )
                    ),
                ),
                fix_state=FixState.FIXED,
                fix_versions=(fixed,),
            ),
        ),
    )


def records(changed: bool) -> list[VulnerabilityRecord]:
    found = [advisory(f"DSA-{n}", "debian:12", f"lib{n}", "dpkg", "2.0-1") for n in range(0, 2000)]
    found += [advisory(f"GHSA-npm-{n}", "npm", f"npm-pkg-{n}", "npm", "2.0.0") for n in range(0, 600)]
    pypi_fix = ["2.0.0"] * 600
    if changed:
        pypi_fix[:25] = ["2.5.0"] * 25
    found += [advisory(f"GHSA-py-{n}", "pypi", f"py-pkg-{n}", "pypi", pypi_fix[n]) for n in range(0, 600)]
    if changed:
        found += [advisory(f"GHSA-py-new-{n}", "pypi", f"py-pkg-{n}", "pypi", "3.0.0") for n in range(25)]
    return found


def build_database(path: Path, changed: bool) -> None:
    with DbBuilder(path, clock=lambda: BASE + timedelta(days=int(changed))) as builder:
        builder.add_records("osv|file:///bench", records(changed))
        builder.publish()


def package(name: str, version: str, kind: PackageType) -> Package:
    return Package(
        name=name, version=version, type=kind, found_by="bench", locations=(Location(path=f"/pkg/{name}"),)
    )


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def populate(home: Path, images: int, share: float) -> None:
    database = home / "db" / "vulnerability.db"
    build_database(database, changed=False)
    python_every = max(1, round(1 / share))
    with LocalStore(home) as store, VulnerabilityDb.open(database) as db:
        matcher = Matcher(db)
        for n in range(images):
            # Every image shares a base of OS packages (some vulnerable), then its own language packages.
            os_packages = [
                package(f"lib{(n + k) % 2400}", "1.0-1", PackageType.DEB) for k in range(OS_PACKAGES)
            ]
            if n % python_every == 0:
                language = [
                    package(f"py-pkg-{(n + k) % 700}", "1.0.0", PackageType.PYTHON)
                    for k in range(LANGUAGE_PACKAGES)
                ]
            else:
                language = [
                    package(f"npm-pkg-{(n + k) % 700}", "1.0.0", PackageType.NPM)
                    for k in range(LANGUAGE_PACKAGES)
                ]
            tag = f"registry.bench:5000/team/app{n % 50}:{n}"
            analysis = ImageAnalysis(
                source=AnalysisSource(
                    type="registry",
                    reference=tag,
                    location=tag,
                    manifest_digest=digest(n),
                    config_digest=digest(10**6 + n),
                    platform="linux/amd64",
                ),
                distro=Distro(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12"),
                packages=tuple(os_packages + language),
            )
            store.analyses.put_analysis(digest(n), analysis)
            store.analyses.put_matches(digest(n), matcher.match(analysis.packages, analysis.distro), BASE)
            store.catalog.put_image(
                ImageRecord(
                    image_digest=digest(n),
                    image_id=digest(10**6 + n),
                    analysis_status=AnalysisStatus.ANALYZED,
                    repo_tags=(tag,),
                    source=f"registry:{tag}",
                    distro="debian:12",
                    package_count=len(analysis.packages),
                    created_at=BASE + timedelta(seconds=n),
                    analyzed_at=BASE,
                )
            )


def stores_of(store: LocalStore) -> AccountStores:
    return AccountStores(
        store.account, store.catalog, store.analyses, store.evaluations, store.policies, store.subscriptions
    )


def rematch(home: Path, mode: str) -> dict[str, object]:
    """One rematch in this process: ``index`` (everything, first time), ``change`` (the feed change)."""
    database = home / "db" / "vulnerability.db"
    with LocalStore(home) as store, VulnerabilityDb.open(database) as db:
        watch = WatchStore(home / "watch.db")
        metadata = db.metadata()
        if mode == "index":
            change = feed_change(None, metadata.namespace_fingerprints or {})
        else:
            previous = json.loads((home / "previous-fingerprints.json").read_text())
            change = feed_change(previous, metadata.namespace_fingerprints or {})
        started = time.perf_counter()
        report = rematch_account(stores_of(store), watch, Matcher(db), change, db_built_at=metadata.built_at)
        elapsed = time.perf_counter() - started
        if mode == "index":
            (home / "previous-fingerprints.json").write_text(json.dumps(metadata.namespace_fingerprints))
        watch.close()
    return {
        "mode": mode,
        "changed_namespaces": sorted(change.namespaces) if not change.everything else "everything",
        "images": report.considered,
        "rematched": report.rematched,
        "changed": report.changed,
        "reevaluated": report.reevaluated,
        "errors": len(report.errors),
        "seconds": round(elapsed, 2),
    }


def child(home: Path, mode: str) -> dict[str, object]:
    """Run one rematch in a fresh process; its own peak RSS (wait4), not the parent's."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--workdir", str(home)], stdout=subprocess.PIPE, text=True
    )
    stdout = process.stdout.read() if process.stdout is not None else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the {mode} rematch failed")
    result: dict[str, object] = json.loads(stdout)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.1, help="share of images the feed change touches")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--child", choices=("index", "change"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(rematch(args.workdir, args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="portwarden-bench-") as scratch:
        home = args.workdir or Path(scratch)
        started = time.perf_counter()
        populate(home, args.images, args.share)
        print(f"populated {args.images} analyses with matches in {time.perf_counter() - started:.1f}s")
        # The first rematch after an upgrade sees no fingerprints: every image, and the index is built.
        full = child(home, "index")
        print(f"whole catalogue (every image, builds the namespace index): {json.dumps(full)}")
        build_database(home / "db" / "vulnerability.db", changed=True)
        measured = child(home, "change")
        print(f"feed change (rematch + re-evaluation of the affected images): {json.dumps(measured)}")
        print(
            f"RESULT: {measured['rematched']} of {measured['images']} images re-matched and re-evaluated in "
            f"{measured['seconds']} s (target < 30 s); peak RSS of the measuring process "
            f"{measured['peak_rss_mib']} MiB"
        )


if __name__ == "__main__":
    main()
