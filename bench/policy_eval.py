"""Policy evaluation time of the default bundle on a large image.

Usage: python bench/policy_eval.py [--packages 1000] [--matches 2000] [--rounds 20]

Synthesizes an analysis with --packages packages (deb, npm, python, java, a realistic mix), a history
Dockerfile with EXPOSE and USER lines, and --matches vulnerability matches spread over every severity
and fix state with CVSS vectors; then evaluates the shipped default bundle --rounds times and prints
the best and median wall time of one evaluation (bundle already loaded, as in a warm service).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis, ImageMetadata
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchCvss, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.policy.default import default_compiled_bundle
from portwarden.core.services.evaluate import evaluate, evaluation_input

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TYPES = (PackageType.DEB, PackageType.DEB, PackageType.NPM, PackageType.PYTHON, PackageType.JAVA_ARCHIVE)
VECTORS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
)


def synthesize(package_count: int, match_count: int) -> tuple[ImageAnalysis, list[Match]]:
    rng = random.Random(42)
    packages = []
    for index in range(package_count):
        package_type = TYPES[index % len(TYPES)]
        location = {
            PackageType.DEB: "/var/lib/dpkg/status",
            PackageType.NPM: f"/app/node_modules/pkg{index}/package.json",
            PackageType.PYTHON: f"/usr/lib/python3/site-packages/pkg{index}-1.0.dist-info/METADATA",
            PackageType.JAVA_ARCHIVE: f"/opt/app/lib/pkg{index}-1.0.jar",
        }.get(package_type, "/")
        packages.append(
            Package(
                name=f"pkg{index}",
                version=f"1.{index % 17}.{index % 5}-1",
                type=package_type,
                licenses=("MIT",),
                locations=(Location(path=location),),
                found_by="bench",
            )
        )
    matches = []
    for index in range(match_count):
        package = packages[rng.randrange(package_count)]
        fix_state = rng.choice((FixState.FIXED, FixState.FIXED, FixState.NOT_FIXED, FixState.WONT_FIX))
        matches.append(
            Match(
                id=f"CVE-2024-{10000 + index}",
                severity=rng.choice(tuple(Severity)),
                cvss=(
                    MatchCvss(version="3.1", vector=rng.choice(VECTORS), score=None, source="nvd@nist.gov"),
                ),
                fix=MatchFix(
                    state=fix_state,
                    versions=("9.9",) if fix_state is FixState.FIXED else (),
                    available_since=NOW - timedelta(days=rng.randrange(400)),
                ),
                package=MatchedPackage(
                    name=package.name,
                    version=package.version,
                    type=package.type.value,
                    location=package.locations[0].path,
                ),
                namespace="debian:12",
                urls=(f"https://security-tracker.debian.org/tracker/CVE-2024-{10000 + index}",),
                published=NOW - timedelta(days=rng.randrange(900)),
                matched_by=MatchDetail(
                    matcher="bench",
                    namespace="debian:12",
                    searched_by="name",
                    constraint="< 9.9",
                    version_format="dpkg",
                ),
            )
        )
    analysis = ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference="registry.example.com/bench/app:1.0",
            location="registry.example.com/bench/app:1.0",
            manifest_digest="sha256:" + "1" * 64,
            config_digest="sha256:" + "2" * 64,
            platform="linux/amd64",
        ),
        distro=Distro(id="debian", version_id="12"),
        packages=tuple(packages),
        image=ImageMetadata(
            config={"architecture": "amd64", "os": "linux", "exposed_ports": ["8080/tcp"]},
            dockerfile="FROM debian:12\nRUN apt-get update\nEXPOSE 8080/tcp\nUSER app\n",
        ),
    )
    return analysis, matches


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--matches", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    analysis, matches = synthesize(args.packages, args.matches)
    bundle = default_compiled_bundle()
    data = evaluation_input(
        analysis, matches, now=NOW, repo_tag="registry.example.com/bench/app:1.0", db_built_at=NOW
    )
    timings = []
    result = None
    for _ in range(args.rounds):
        started = time.perf_counter()
        result = evaluate(bundle, data)
        timings.append(time.perf_counter() - started)
    assert result is not None
    print(f"packages={args.packages} matches={args.matches} rounds={args.rounds}")
    print(f"result rows={len(result.results)} final_action={result.final_action.value}")
    print(f"best={min(timings) * 1000:.1f} ms  median={statistics.median(timings) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
