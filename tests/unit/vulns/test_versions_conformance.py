"""Comparators against the shared conformance vectors (osv-scalibr orderings, grype constraint cases).

Each osv-scalibr file is one test: looping inside keeps ~100k checks fast, and the failure message
lists every wrong line. Known, deliberate differences from grype are listed below with the reason
(docs/versions.md explains them); they are asserted to still differ, so the list cannot go stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.vulns.versions import get_comparator, parse_constraint
from tests.conftest import FIXTURES_DIR, fixture_files

VERSIONS_DIR = FIXTURES_DIR / "conformance" / "versions"
OSV_DIR = VERSIONS_DIR / "osv-scalibr"
GRYPE_CASES = VERSIONS_DIR / "grype" / "grype-version-cases.json"

# osv-scalibr fixture prefix -> our comparator key. Pub, CRAN and Hackage are not supported.
OSV_FILES = {
    "alpine": "apk",
    "debian": "dpkg",
    "redhat": "rpm",
    "maven": "maven",
    "pypi": "pypi",
    "rubygems": "rubygems",
    "packagist": "packagist",
    "nuget": "nuget",
    "semver": "semver",
}
# The semver file is applied to every ecosystem that shares the SemVer comparator, as osv-scalibr does.
SEMVER_ALIASES = ("npm", "go", "crates.io")

_INVERSE = {"<": ">", ">": "<", "=": "="}
_SYMBOL = {-1: "<", 0: "=", 1: ">"}


def _osv_cases() -> list[Any]:
    cases: list[Any] = []
    for path in fixture_files(OSV_DIR, "*.txt"):
        prefix = path.name.split("-", 1)[0]
        if prefix not in OSV_FILES:
            continue
        keys = [OSV_FILES[prefix]] + (list(SEMVER_ALIASES) if prefix == "semver" else [])
        cases.extend(pytest.param(path, key, id=f"{path.stem}[{key}]") for key in keys)
    return cases


def _vector_lines(path: Path) -> list[tuple[str, str, str]]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(("# ", "// ")):
            continue
        left, operator, right = line.split(" ")
        lines.append((left, operator, right))
    return lines


def test_every_supported_osv_fixture_is_found() -> None:
    prefixes = {path.name.split("-", 1)[0] for path in fixture_files(OSV_DIR, "*.txt")}
    assert set(OSV_FILES) <= prefixes


@pytest.mark.parametrize(("path", "key"), _osv_cases())
def test_osv_scalibr_vectors_both_directions(path: Path, key: str) -> None:
    comparator = get_comparator(key)
    failures = []
    checked = 0
    for left, operator, right in _vector_lines(path):
        for a, expected, b in ((left, operator, right), (right, _INVERSE[operator], left)):
            checked += 1
            got = _SYMBOL[comparator.compare(a, b)]
            if got != expected:
                failures.append(f"{a} {expected} {b} (got {got})")
    print(f"{path.name} [{key}]: {checked - len(failures)}/{checked} passed")
    assert checked > 0
    assert not failures, f"{len(failures)} of {checked} wrong:\n" + "\n".join(failures[:50])


# ---------------------------------------------------------------------------------------------------
# grype constraint and compare cases

GRYPE_FORMATS = {
    "semantic": "semver",
    "deb": "dpkg",
    "rpm": "rpm",
    "python(pep440)": "pypi",
    "apk": "apk",
    "gem": "rubygems",
    "maven": "maven",
    "go": "go",
}
# Formats we have no comparator for (portage, bitnami, kb, jvm, pacman, fuzzy).
GRYPE_UNSUPPORTED = {"portage", "bitnami", "kb", "jvm", "pacman", "unknown(fuzzy)"}

_ONE_SIDED_EPOCH = "grype ignores the epoch when only one side has one; we treat a missing epoch as 0"
_GEM_PLATFORM = (
    "grype strips gem platform suffixes; Gem::Version (and osv-scalibr) read them as a pre-release"
)
_SEMVER_HYPHEN = (
    "grype equates '.' and '-' between pre-release identifiers; SemVer (and osv-scalibr) do not: "
    "alpha.beta has two identifiers, alpha-beta one"
)

KNOWN_CONSTRAINT_DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("rpm", "1:0", "< 1"): _ONE_SIDED_EPOCH,
    ("rpm", "1.0", "< 2:1.0"): _ONE_SIDED_EPOCH,
    ("rpm", "2:4.19.01-1.el7_5", "<= 4.19.1-1.el7_5"): _ONE_SIDED_EPOCH,
    ("rpm", "4.19.01-1.el7_5", "< 2:4.19.1-1.el7_5"): _ONE_SIDED_EPOCH,
    ("rpm", "4.19.0-1.el7_5", "< 12:4.19.0-1.el7"): _ONE_SIDED_EPOCH,
    ("rpm", "4.19.0-1.el7_5", "<= 12:4.19.0-1.el7"): _ONE_SIDED_EPOCH,
    ("rpm", "3:4.19.0-1.el7_5", "< 4.21.0-1.el7"): _ONE_SIDED_EPOCH,
    ("rpm", "8.3.1-5.el8", "< 0:8.3.1-5.el8.0.0"): _ONE_SIDED_EPOCH + " (and rpmvercmp: el8 < el8.0.0)",
    ("rpm", "8.3.1-5.el8.0.0", "> 0:8.3.1-5.el8"): _ONE_SIDED_EPOCH + " (and rpmvercmp: el8.0.0 > el8)",
    ("gem", "1.2.0-x86-linux", "= 1.2.0"): _GEM_PLATFORM,
    ("gem", "1.2.0-x86_64-linux", "= 1.2.0"): _GEM_PLATFORM,
    ("gem", "1.19.3-aarch64-linux-gnu", "= 1.19.3"): _GEM_PLATFORM,
    ("gem", "1.19.3-aarch64-linux-gnu", "< 1.19.3"): _GEM_PLATFORM,
    ("gem", "1.19.3-aarch64-linux-musl", "= 1.19.3"): _GEM_PLATFORM,
    ("gem", "1.19.3-aarch64-linux-musl", "< 1.19.3"): _GEM_PLATFORM,
    ("semantic", "1.0.0.alpha.beta", "= 1.0.0-alpha-beta"): _SEMVER_HYPHEN,
    ("semantic", "1.0.0.rc.alpha", "= 1.0.0-rc-alpha"): _SEMVER_HYPHEN,
}
KNOWN_COMPARE_DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("rpm", "1:0", "1"): _ONE_SIDED_EPOCH,
    ("rpm", "2:4.19.01-1.el7_5", "4.19.1-1.el7_5"): _ONE_SIDED_EPOCH,
    ("rpm", "4.19.01-1.el7_5", "2:4.19.1-1.el7_5"): _ONE_SIDED_EPOCH,
    ("rpm", "4.19.0-1.el7_5", "12:4.19.0-1.el7"): _ONE_SIDED_EPOCH,
    ("rpm", "3:4.19.0-1.el7_5", "4.21.0-1.el7"): _ONE_SIDED_EPOCH,
}


def _grype() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GRYPE_CASES.read_text(encoding="utf-8"))
    return data


def test_grype_formats_are_all_classified() -> None:
    formats = {case["format"] for case in _grype()["constraint_cases"]}
    assert formats <= set(GRYPE_FORMATS) | GRYPE_UNSUPPORTED


@pytest.mark.parametrize("grype_format", sorted(GRYPE_FORMATS))
def test_grype_constraint_cases(grype_format: str) -> None:
    comparator = get_comparator(GRYPE_FORMATS[grype_format])
    cases = [case for case in _grype()["constraint_cases"] if case["format"] == grype_format]
    failures = []
    known_seen = []
    for case in cases:
        got = parse_constraint(case["constraint"]).satisfied_by(case["version"], comparator)
        key = (grype_format, case["version"], case["constraint"])
        if key in KNOWN_CONSTRAINT_DIFFERENCES:
            known_seen.append(key)
            if got == case["satisfied"]:
                failures.append(f"listed as a known difference but now agrees with grype: {key}")
        elif got != case["satisfied"]:
            failures.append(f"{case['version']!r} {case['constraint']!r}: expected {case['satisfied']}")
    expected_known = [key for key in KNOWN_CONSTRAINT_DIFFERENCES if key[0] == grype_format]
    print(f"grype {grype_format}: {len(cases) - len(known_seen)}/{len(cases)} agree, {len(known_seen)} known")
    assert cases
    assert sorted(known_seen) == sorted(expected_known)
    assert not failures, "\n".join(failures)


def test_grype_rpm_compare_cases() -> None:
    comparator = get_comparator("rpm")
    cases = [case for case in _grype()["compare_cases"] if case["format"] == "rpm"]
    failures = []
    known = 0
    for case in cases:
        got = comparator.compare(case["v1"], case["v2"])
        reverse = comparator.compare(case["v2"], case["v1"])
        if ("rpm", case["v1"], case["v2"]) in KNOWN_COMPARE_DIFFERENCES:
            known += 1
            if got == case["result"]:
                failures.append(f"known difference now agrees: {case}")
        elif got != case["result"] or reverse != -case["result"]:
            failures.append(f"{case['v1']} vs {case['v2']}: expected {case['result']}, got {got}/{reverse}")
    print(f"grype rpm compare: {len(cases) - known}/{len(cases)} agree, {known} known")
    assert len(cases) == 19
    assert known == len(KNOWN_COMPARE_DIFFERENCES)
    assert not failures, "\n".join(failures)
