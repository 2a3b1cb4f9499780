"""`scan sbom:` time: a 1,000-package SBOM read, matched and triaged against an opened database.

Usage: python bench/scan_sbom.py [--packages 1000] [--rounds 5] [--cli-rounds 3]

Builds a database from the OSV samples (PyPI + Go) and the Debian tracker excerpt in
``tests/fixtures/feeds-sample`` (not timed), and writes one image's worth of packages (as
``bench/match.py`` makes them: language packages named after packages the database has advisories
for, every tenth a Debian package with a source name; all with purls) as CycloneDX 1.6, SPDX 2.3 and
native JSON, plus an OpenVEX document with 50 statements and 5 ignore rules.

Timed, per format, with the database already open: reading and decoding the SBOM, matching, applying
VEX and ignore rules, and encoding the JSON report (what `portwarden scan sbom:FILE -o json` does
after opening the database). The first run in a fresh process (every cache cold) is the figure the
target is about; warm rounds follow. The whole command (`portwarden scan sbom:FILE -o json`, process
start and database opening included) is also timed, for reference.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from packageurl import PackageURL

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.sbom import encode
from portwarden.core.sbom.decode import read_sbom
from portwarden.core.sbom.vulnerabilities import scan_document
from portwarden.core.services.scan import match_and_evaluate
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.triage import load_triage_inputs
from portwarden.core.triage.config import read_config
from portwarden.core.vulns.db import FeedKind, VulnerabilityDb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from match import DISTRO, packages_for

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "feeds-sample"
FORMATS = ("cyclonedx-json", "spdx-json", "json")
_PURL_TYPES = {PackageType.PYTHON: "pypi", PackageType.GO_MODULE: "golang", PackageType.DEB: "deb"}


def with_purls(packages: list[Package]) -> list[Package]:
    result = []
    for index, package in enumerate(packages):
        namespace = "debian" if package.type is PackageType.DEB else None
        name = package.name
        if package.type is PackageType.GO_MODULE and "/" in name:
            namespace, name = name.rsplit("/", 1)
        qualifiers = {"distro": "debian-12"} if package.type is PackageType.DEB else None
        if package.type is PackageType.DEB:
            qualifiers = {"distro": "debian-12", "upstream": str(package.metadata["source_name"])}
        purl = PackageURL(
            type=_PURL_TYPES[package.type],
            namespace=namespace,
            name=name,
            version=package.version,
            qualifiers=qualifiers,
        ).to_string()
        location = "/var/lib/dpkg/status" if package.type is PackageType.DEB else f"/app/lib/{index}/METADATA"
        result.append(package.model_copy(update={"purl": purl, "locations": (Location(path=location),)}))
    return result


def write_inputs(db: VulnerabilityDb, work: Path, count: int) -> None:
    packages = with_purls(packages_for(db, count))
    analysis = ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference="registry.example/bench/app:1",
            location="registry.example/bench/app:1",
            manifest_digest="sha256:" + "b" * 64,
            config_digest="sha256:" + "c" * 64,
            platform="linux/amd64",
        ),
        distro=DISTRO,
        packages=tuple(packages),
        analyzed_at="2026-01-01T00:00:00+00:00",
    )
    for document_format in FORMATS:
        (work / f"sbom.{document_format}").write_text(encode(analysis, document_format))
    statements = [
        {
            "vulnerability": {"name": f"CVE-2099-{index:04d}"},
            "products": [{"@id": packages[index].purl}],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        }
        for index in range(50)
    ]
    (work / "vex.json").write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "@id": "https://example.test/vex/bench",
                "author": "bench",
                "timestamp": "2026-01-01T00:00:00Z",
                "version": 1,
                "statements": statements,
            }
        )
    )
    rules = "".join(
        f"  - vulnerability: CVE-2098-{index:04d}\n    reason: bench rule\n" for index in range(5)
    )
    (work / "config.yaml").write_text(f"ignore:\n{rules}vex: [vex.json]\n")


def scan_once(database: Path, sbom: Path, config: Path) -> tuple[float, int, int]:
    """Seconds from an open database to the JSON report; the package and match counts."""
    with VulnerabilityDb.open(database) as db:
        db.metadata()
        gc.collect()
        started = time.perf_counter()
        inputs = load_triage_inputs([], read_config(config))
        analysis = read_sbom(sbom)
        result = match_and_evaluate(analysis, db, triage=inputs)
        json.dumps(scan_document(analysis, result.matches, result.triage))
        elapsed = time.perf_counter() - started
        return elapsed, len(analysis.packages), len(result.all_matches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cli-rounds", type=int, default=3)
    parser.add_argument("--once", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once is not None:
        elapsed, packages, matches = scan_once(*args.once)
        print(json.dumps({"seconds": elapsed, "packages": packages, "matches": matches}))
        return
    work = Path(tempfile.mkdtemp(prefix="scan-sbom-bench-"))
    try:
        home = work / "home"
        database = home / "db" / "vulnerability.db"
        database.parent.mkdir(parents=True)
        sources = [
            FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "osv" / "PyPI" / "all.zip").as_uri()),
            FeedSource(kind=FeedKind.OSV, url=(SAMPLE / "osv" / "Go" / "all.zip").as_uri()),
            FeedSource(
                kind=FeedKind.DEBIAN, url=(SAMPLE / "debian" / "vunnel-fixtures" / "debian.json").as_uri()
            ),
        ]
        sync_feeds(sources, HttpFeedFetcher(work / "downloads"), database)
        with VulnerabilityDb.open(database) as db:
            write_inputs(db, work, args.packages)
        config = work / "config.yaml"
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        for document_format in FORMATS:
            sbom = work / f"sbom.{document_format}"
            samples = []
            counts = ""
            for _ in range(args.rounds):
                command = [sys.executable, __file__, "--once", str(database), str(sbom), str(config)]
                output = json.loads(
                    subprocess.run(command, check=True, capture_output=True, text=True).stdout
                )
                samples.append(output["seconds"])
                counts = f"{output['packages']} packages, {output['matches']} matches"
            cli = []
            for _ in range(args.cli_rounds):
                started = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "portwarden.cli.main",
                        "scan",
                        f"sbom:{sbom}",
                        "-o",
                        "json",
                        "--config",
                        str(config),
                    ],
                    check=True,
                    capture_output=True,
                    env={**os.environ, "PORTWARDEN_HOME": str(home)},
                )
                cli.append(time.perf_counter() - started)
            print(
                f"{document_format:15} {sbom.stat().st_size / 1e6:5.2f} MB, {counts}: "
                f"database open -> JSON report, fresh process: best {min(samples) * 1000:.0f} ms, "
                f"median {statistics.median(samples) * 1000:.0f} ms; whole command median "
                f"{statistics.median(cli) * 1000:.0f} ms"
                if cli
                else ""
            )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
