"""Order keys and range plans give the same answers as the comparators they stand in for.

A database stores, for every range bound, a string whose code-point order is the comparator's order
(``order_key``), with the range's constraint text and bound validity (its *plan*). The matcher
compares those strings instead of parsing bounds. These tests pin the keys to ``compare`` on the
shared conformance vectors, the encoding to tuple order, and plan-based matching to range-based
matching.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    RangeType,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.db import DbBuilder, FeedKind, SourceState, SourceStatus, VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.vulns.versions import COMPARATORS, get_comparator
from portwarden.core.vulns.versions.base import encode_ordered
from portwarden.core.vulns.versions.range_plans import build_plan, decode_plan, order_key, planned_events
from tests.conftest import FIXTURES_DIR, fixture_files

OSV_DIR = FIXTURES_DIR / "conformance" / "versions" / "osv-scalibr"

# Comparators whose parsed form is a plain sort key: they have order keys.
KEYED = ("dpkg", "rpm", "pypi", "semver", "npm", "go", "crates.io", "nuget")
VECTOR_FILES = {
    "dpkg": "debian",
    "rpm": "redhat",
    "pypi": "pypi",
    "semver": "semver",
    "npm": "semver",
    "go": "semver",
    "crates.io": "semver",
    "nuget": "nuget",
}
# Strings no grammar accepts, or that stress the encoding: unparsable text, NULs, huge and negative-
# weighted parts (dpkg's ``~``), local labels, epochs.
ODD_VERSIONS = (
    "",
    " ",
    "not a version",
    "1.0\x00",
    "1.0\x00\x01",
    "a\x00b",
    "1.0~~",
    "1.0~",
    "1:0",
    "99999999999999999999999.1",
    "1" * 5000,
    "1.0+local.7",
    "1.0+local.07.a",
    "1.0+1",
    "1!0.1",
    "1.0.post1.dev2",
    "1.0rc1.dev3",
    "v1.2.3-rc.1",
    "0.0.0-20191109021931-daa7c04131f5",
    "1.2.3.4.5",
    "1.0-1.el8",
    "1.0^git1",
    "é1.0",
)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _vector_versions(prefix: str) -> list[str]:
    versions: list[str] = []
    for path in fixture_files(OSV_DIR, f"{prefix}-versions*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith(("# ", "// ")):
                continue
            left, _, right = line.split(" ")
            versions.extend((left, right))
    return list(dict.fromkeys(versions))


@pytest.mark.parametrize("name", KEYED)
def test_order_keys_order_as_the_comparator_does(name: str) -> None:
    comparator = get_comparator(name)
    versions = _vector_versions(VECTOR_FILES[name])
    assert len(versions) > 30
    rng = random.Random(7)
    pool = versions + list(ODD_VERSIONS)
    pairs = list(itertools.combinations(list(ODD_VERSIONS) + rng.sample(versions, min(60, len(versions))), 2))
    pairs += [(rng.choice(pool), rng.choice(pool)) for _ in range(20_000)]
    wrong = []
    for left, right in pairs:
        left_key, right_key = order_key(comparator, left), order_key(comparator, right)
        if left_key is None or right_key is None:
            continue
        by_key = (left_key > right_key) - (left_key < right_key)
        if by_key != comparator.compare(left, right):
            wrong.append((left, right, by_key))
    assert not wrong, wrong[:10]
    # Nearly every version has a key; the huge number has none (it cannot be written out).
    assert sum(order_key(comparator, version) is None for version in pool) <= 1


def test_comparators_without_sort_keys_have_no_order_keys() -> None:
    for name in set(COMPARATORS) - set(KEYED):
        assert order_key(get_comparator(name), "1.0") is None, name


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.random()
    if depth < 3 and choice < 0.3:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(4)))
    if choice < 0.65:
        return rng.choice(
            [0, 1, -1, 9, 10, -10, 99, 100, -100, 10**20, -(10**20), rng.randrange(-5000, 5000)]
        )
    return "".join(rng.choice("\x00\x01\x02ab~-é") for _ in range(rng.randrange(4)))


def _comparable(left: Any, right: Any) -> bool:
    try:
        _ = left < right
    except TypeError:
        return False
    return True


def test_encoding_preserves_tuple_order() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(20_000):
        left, right = (_random_value(rng),), (_random_value(rng),)
        if not _comparable(left, right):
            continue
        expected = (left > right) - (left < right)
        encoded_left, encoded_right = encode_ordered(left), encode_ordered(right)
        assert (encoded_left > encoded_right) - (encoded_left < encoded_right) == expected, (left, right)
        checked += 1
    assert checked > 5_000
    with pytest.raises(TypeError):
        encode_ordered((1, 2.5))


def test_a_plan_states_constraint_validity_and_keys() -> None:
    text = build_plan(
        "pypi",
        [
            ("ECOSYSTEM", [("introduced", "0.1-doduo"), ("fixed", "1.0")]),
            ("SEMVER", [("introduced", "0"), ("last_affected", "2.0.0"), ("limit", "*")]),
        ],
    )
    assert text is not None
    first, second = decode_plan(text)
    pypi = get_comparator("pypi")
    assert tuple(first[:3]) == ("pypi", ">= 0.1-doduo, < 1.0", True)
    assert list(planned_events(first[3]))[1] == ("fixed", "1.0", order_key(pypi, "1.0"))
    # SEMVER ranges of a non-SemVer ecosystem are ordered by SemVer, as the ranges themselves are.
    assert tuple(second[:3]) == ("semver", "<= 2.0.0", False)
    assert list(planned_events(second[3]))[2] == ("limit", "*", order_key(get_comparator("semver"), "*"))
    assert build_plan("no-such-ecosystem", [("ECOSYSTEM", [("introduced", "0")])]) is None


# ---- plans against ranges, through the whole matcher ------------------------------------------------


def _affected(
    namespace: str,
    name: str,
    version_format: str,
    *ranges: tuple[RangeType, list[tuple[str, str]]],
    **extra: Any,
) -> AffectedRange:
    fixed = tuple(version for _, events in ranges for kind, version in events if kind == "fixed")
    return AffectedRange(
        namespace=namespace,
        package_name=name,
        version_format=version_format,
        ranges=tuple(
            VersionRange(
                type=range_type, events=tuple(RangeEvent(kind=EventKind(k), version=v) for k, v in events)
            )
            for range_type, events in ranges
        ),
        fix_state=FixState.FIXED if fixed else FixState.NOT_FIXED,
        fix_versions=fixed,
        **extra,
    )


ECO = RangeType.ECOSYSTEM
RECORDS = [
    VulnerabilityRecord(
        id="PYSEC-1",
        namespace="pypi",
        source="osv",
        affected=(
            _affected(
                "pypi",
                "demo",
                "pypi",
                (ECO, [("introduced", "1.0"), ("fixed", "1.4"), ("introduced", "2.0")]),
            ),
        ),
    ),
    VulnerabilityRecord(
        id="PYSEC-2",
        namespace="pypi",
        source="osv",
        affected=(
            _affected(
                "pypi",
                "demo",
                "pypi",
                (ECO, [("introduced", "0"), ("fixed", "1.2"), ("fixed", "1.3"), ("limit", "1.8")]),
                (RangeType.SEMVER, [("introduced", "2.0.0"), ("last_affected", "2.1.0")]),
                versions=("9.9.9",),
            ),
        ),
    ),
    VulnerabilityRecord(
        id="PYSEC-3",
        namespace="pypi",
        source="osv",
        affected=(
            _affected("pypi", "demo", "pypi", (ECO, [("introduced", "0.1-doduo"), ("fixed", "1.1+local.2")])),
        ),
    ),
    VulnerabilityRecord(
        id="GO-1",
        namespace="go",
        source="osv",
        affected=(
            _affected(
                "go",
                "example.com/mod",
                "go",
                (RangeType.SEMVER, [("introduced", "0"), ("fixed", "0.0.0-20200101000000-abcdefabcdef")]),
                (RangeType.SEMVER, [("introduced", "1.2.0"), ("fixed", "1.2.5")]),
            ),
        ),
    ),
    VulnerabilityRecord(
        id="DEB-1",
        namespace="debian:12",
        source="debian-tracker",
        affected=(
            _affected("debian:12", "openssl", "dpkg", (ECO, [("introduced", "0"), ("fixed", "1:1.0~rc1-1")])),
        ),
    ),
    # No order keys for apk: the plan's bounds are compared through the comparator.
    VulnerabilityRecord(
        id="ALPINE-1",
        namespace="alpine:3.20",
        source="alpine-secdb",
        affected=(
            _affected("alpine:3.20", "zlib", "apk", (ECO, [("introduced", "0"), ("fixed", "1.2.12-r2")])),
        ),
    ),
]


def _package(name: str, version: str, package_type: PackageType, **metadata: str) -> Package:
    return Package(name=name, version=version, type=package_type, found_by="test", metadata=metadata)


PACKAGES = [
    *(
        _package("demo", version, PackageType.PYTHON)
        for version in (
            "0.5",
            "1.0",
            "1.1",
            "1.1+local.1",
            "1.2.5",
            "1.5",
            "1.9",
            "2.0",
            "2.0.5",
            "2.1",
            "9.9.9",
            "bad",
        )
    ),
    *(
        _package("example.com/mod", version, PackageType.GO_MODULE)
        for version in ("v0.0.0-20190101000000-abcdefabcdef", "v1.2.3", "v1.2.5", "v2.0.0")
    ),
]
DEBIAN_PACKAGES = [
    _package("libssl3", version, PackageType.DEB, source_name="openssl", source_version=version)
    for version in ("1:1.0~beta-1", "1:1.0~rc1-1", "1.9", "x:y")
]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.add_records("osv|u", RECORDS)
        builder.set_source_state(
            SourceState(key="osv|u", kind=FeedKind.OSV, url="u", status=SourceStatus.UPDATED)
        )
        builder.publish()
    return path


def _dumps(db: VulnerabilityDb, packages: list[Package], distro_id: str | None) -> list[str]:
    distro = Distro(id=distro_id, version_id="12") if distro_id else None
    return [match.model_dump_json() for match in Matcher(db).match(packages, distro)]


def test_plans_and_ranges_give_the_same_matches(database: Path) -> None:
    with VulnerabilityDb.open(database) as db:
        assert db.plans_usable
        planned = _dumps(db, PACKAGES, None) + _dumps(db, DEBIAN_PACKAGES, "debian")
        db.plans_usable = False
        from_ranges = _dumps(db, PACKAGES, None) + _dumps(db, DEBIAN_PACKAGES, "debian")
    assert planned == from_ranges
    assert len(planned) > 10
    assert any('"fallback_ordering":true' in match for match in planned)


def test_plans_from_other_key_code_are_ignored_and_remade_on_carry_over(
    database: Path, tmp_path: Path
) -> None:
    with VulnerabilityDb.open(database) as db:
        expected = _dumps(db, PACKAGES, None)
    # A file written by other key code: another fingerprint, and plans that would answer wrongly.
    stale = tmp_path / "stale.db"
    stale.write_bytes(database.read_bytes())
    with sqlite3.connect(stale) as connection:
        connection.execute("UPDATE metadata SET value = 'other' WHERE key = 'sort_keys'")
        connection.execute("UPDATE affected SET plan = replace(plan, '\"fixed\"', '\"limit\"')")
    with VulnerabilityDb.open(stale) as db:
        assert not db.plans_usable
        assert _dumps(db, PACKAGES, None) == expected
    rebuilt = tmp_path / "rebuilt.db"
    with DbBuilder(rebuilt, previous=stale) as builder:
        builder.carry_over("osv|u")
        builder.set_source_state(builder.previous_states["osv|u"])
        builder.publish()
    with VulnerabilityDb.open(rebuilt) as db:
        assert db.plans_usable
        (plan,) = {row.plan_text for row in db.affected("go", ["example.com/mod"])}
        assert plan is not None and '"fixed"' in plan
        assert _dumps(db, PACKAGES, None) == expected


def test_explicitly_listed_versions_match_exactly(tmp_path: Path) -> None:
    # Versions JSON escapes (quotes, backslashes, control characters) and one it keeps as is (é).
    listed = ("1.0", 'we"ird', "a\\b", "tab\there", "é2")
    record = VulnerabilityRecord(
        id="PYSEC-LISTED",
        namespace="pypi",
        source="osv",
        affected=(_affected("pypi", "listed", "pypi", versions=listed),),
    )
    path = tmp_path / "listed.db"
    with DbBuilder(path) as builder:
        builder.add_records("osv|u", [record])
        builder.set_source_state(
            SourceState(key="osv|u", kind=FeedKind.OSV, url="u", status=SourceStatus.UPDATED)
        )
        builder.publish()
    candidates = [*listed, "1.0.0", "1", "we", "é", "2", '"1.0"', "1.0,"]
    with VulnerabilityDb.open(path) as db:
        matches = Matcher(db).match(
            [_package("listed", version, PackageType.PYTHON) for version in candidates], None
        )
    assert sorted(match.package.version for match in matches) == sorted(listed)
    assert {match.matched_by.constraint for match in matches} == {f"= {version}" for version in listed}
