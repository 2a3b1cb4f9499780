"""Comparator behaviour beyond the conformance vectors: fallback order, validity, registry, speed."""

from __future__ import annotations

import itertools
import random
from functools import cmp_to_key

import pytest
from debian.debian_support import version_compare

from portwarden.core.errors import UnknownEcosystemError
from portwarden.core.model.package import PackageType
from portwarden.core.vulns.versions import (
    COMPARATORS,
    Comparator,
    comparator_key_for_osv_ecosystem,
    comparator_key_for_package_type,
    get_comparator,
)
from tests.conftest import FIXTURES_DIR

OSV_DIR = FIXTURES_DIR / "conformance" / "versions" / "osv-scalibr"

JUNK = [
    "",
    " ",
    "-",
    ".",
    "::",
    "a:b:c",
    "1..2",
    "v",
    "latest",
    "\x00",
    "1.0\n",
    "🙂",
    "1.0 beta",
    "x" * 500,
    "9" * 60,
    "9" * 5000,  # beyond Python's int() digit limit
    "1-" * 3000,  # Maven nests a sub-list per hyphen
    "1." * 3000,
    "1.0-" + "1" * 40,
    "${version}",
    "1.2.3-rc.1+build.5",
    "1:2:3-4-5",
]


def _sign_of(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize("key", sorted(COMPARATORS))
def test_compare_never_raises_and_is_antisymmetric(key: str) -> None:
    comparator = get_comparator(key)
    for a in JUNK:
        assert comparator.is_valid(a) in (True, False)
        for b in JUNK:
            forward = comparator.compare(a, b)
            assert forward in (-1, 0, 1)
            assert comparator.compare(b, a) == -forward, (a, b)
            assert comparator.compare(a, b) == forward  # stable across calls (and cache hits)


@pytest.mark.parametrize("key", sorted(COMPARATORS))
def test_every_comparator_satisfies_the_protocol(key: str) -> None:
    comparator = get_comparator(key)
    assert isinstance(comparator, Comparator)
    assert comparator.name == key


# --- the documented fallback: unparsable sorts first, then by raw string -------------------------


def test_dpkg_unparsable_versions_sort_first_then_lexically() -> None:
    dpkg = get_comparator("dpkg")
    invalid = ["not a version", "1.0_beta", "", "abc def"]
    valid = ["0.1", "1.0-1", "1:0.5"]
    assert not any(dpkg.is_valid(version) for version in invalid)
    assert all(dpkg.is_valid(version) for version in valid)
    expected = ["", "1.0_beta", "abc def", "not a version", "0.1", "1.0-1", "1:0.5"]
    for seed in range(5):
        shuffled = invalid + valid
        random.Random(seed).shuffle(shuffled)
        assert sorted(shuffled, key=cmp_to_key(dpkg.compare)) == expected


def test_pypi_legacy_versions_sort_before_pep440_and_among_themselves_deterministically() -> None:
    pypi = get_comparator("pypi")
    legacy = ["0.9-doduo", "0.1-bulbasaur", "1.0-foo-bar", "-class.-jw.util.version.version-dev"]
    pep440 = ["0.0.1", "1.0", "2.0rc1", "2.0"]
    assert not any(pypi.is_valid(version) for version in legacy)
    assert all(pypi.is_valid(version) for version in pep440)
    orders = set()
    for seed in range(5):
        shuffled = legacy + pep440
        random.Random(seed).shuffle(shuffled)
        ordered = sorted(shuffled, key=cmp_to_key(pypi.compare))
        assert set(ordered[: len(legacy)]) == set(legacy)
        assert ordered[len(legacy) :] == pep440
        orders.add(tuple(ordered))
    assert len(orders) == 1
    assert pypi.compare("0.1-bulbasaur", "0.1-charmander") == -1
    assert pypi.compare("1.0-foo", "0.0.1") == -1  # legacy, however "high", is below PEP 440


def test_apk_two_invalid_versions_compare_as_strings_but_invalid_vs_valid_by_parts() -> None:
    apk = get_comparator("apk")
    assert not apk.is_valid("1.2_blah") and not apk.is_valid("1.2_zzz")
    assert apk.compare("1.2_blah", "1.2_zzz") == -1  # both invalid: raw string order
    assert apk.compare("1.2", "1.2_blah") == 1  # trailing junk sorts just below the clean version
    assert apk.compare("1.3", "1.2_blah") == 1
    assert apk.is_valid("1.2.3_rc1-r2")
    assert not apk.is_valid("6.6.2p1")  # a letter followed by digits is outside apk's grammar
    assert apk.compare("6.6.2p1", "6.6.2_p1") == 1  # ...but still ordered, as apk orders it


def test_invalid_versions_are_flagged_by_is_valid() -> None:
    cases = {
        "dpkg": ("1:2.30-1ubuntu0.1", "1.0 beta"),
        "rpm": ("1:2.4.6-1.el9_2", "1.0 -1"),
        "apk": ("1.36.1-r15", "1.36.1 r15"),
        "pypi": ("2.31.0.post1", "0.9-doduo"),
        "semver": ("1.2.3-beta.1+build", "1.2.3.4.5"),
        "npm": ("1.2.3", "latest"),
        "go": ("v0.0.0-20191109021931-daa7c04131f5", "master"),
        "crates.io": ("0.4.20", "0.4.x"),
        "maven": ("5.2.25.RELEASE", "SNAPSHOT"),
        "rubygems": ("7.0.4.1", "1..2"),
        "nuget": ("1.0.0.1-beta", "1.0.0.0.0"),
        "packagist": ("v2.1.0-RC1", "not a version"),
    }
    for key, (good, bad) in cases.items():
        comparator = get_comparator(key)
        assert comparator.is_valid(good), (key, good)
        assert not comparator.is_valid(bad), (key, bad)


# --- ecosystem details worth pinning ---------------------------------------------------------------


def test_dpkg_sort_key_agrees_with_python_debian_on_the_vectors() -> None:
    dpkg = get_comparator("dpkg")
    versions: set[str] = set()
    for path in (OSV_DIR / "debian-versions-generated.txt", OSV_DIR / "debian-versions.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith(("# ", "// ")):
                left, _, right = line.split(" ")
                versions.update((left, right))
    sample = sorted(versions)[:: max(1, len(versions) // 400)]
    pairs = [(a, b) for a in sample[:60] for b in sample]
    mismatches = [(a, b) for a, b in pairs if dpkg.compare(a, b) != _sign_of(version_compare(a, b))]
    assert len(pairs) > 10_000
    assert not mismatches[:20]


def test_dpkg_sort_key_agrees_with_python_debian_on_edge_combinations() -> None:
    # pairs of short atoms cover tildes at the end of runs, leading zeros, empty revisions and epochs
    atoms = ["0", "00", "1", "01", "~", "~~", "a", "A", "+", ".", "-", "0~", "1.0", "1.0~rc1", "1~", "1:0"]
    dpkg = get_comparator("dpkg")
    versions = sorted({x + y for x, y in itertools.product(atoms, repeat=2)} | {"0~", "0", "1.0", "1.0-0"})
    versions = [version for version in versions if dpkg.is_valid(version)]
    mismatches = [
        (a, b) for a in versions for b in versions if dpkg.compare(a, b) != _sign_of(version_compare(a, b))
    ]
    assert len(versions) > 150
    assert dpkg.compare("0~", "0") == -1
    assert not mismatches[:20]


def test_rpm_tilde_and_caret() -> None:
    rpm = get_comparator("rpm")
    ordered = ["1.0~rc1", "1.0", "1.0^git1", "1.0a", "1.0.1", "1:0.1"]
    assert sorted(reversed(ordered), key=cmp_to_key(rpm.compare)) == ordered
    assert rpm.compare("0:1.2-3", "1.2-3") == 0


def test_go_pseudo_versions_and_incompatible() -> None:
    go = get_comparator("go")
    assert go.compare("v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20200101000000-0123456789ab") == -1
    assert go.compare("v0.0.0-20191109021931-daa7c04131f5", "v0.0.1") == -1
    assert go.compare("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3") == 1  # pseudo after v1.2.3
    assert go.compare("v3.2.0+incompatible", "3.2.0") == 0
    assert go.compare("v2.0.0+incompatible", "v1.9.9") == 1


def test_semver_lenient_forms() -> None:
    npm = get_comparator("npm")
    assert npm.compare("1.21rc2", "1.21.0-rc2") == 0
    assert npm.compare("2.0", "2.0.0") == 0
    assert npm.compare("V1.0.0", "1.0.0") == 0
    assert npm.compare("1.0.0-beta.11", "1.0.0-beta.2") == 1
    assert npm.compare("1" * 40 + ".0.0", "9.0.0") == 1  # no integer size limit


def test_maven_qualifier_order() -> None:
    maven = get_comparator("maven")
    ordered = [
        "1-alpha-1",
        "1-beta",
        "1-milestone-2",
        "1-rc-1",
        "1-SNAPSHOT",
        "1",
        "1-sp",
        "1-foo",
        "1-1",
        "1.1",
    ]
    assert sorted(reversed(ordered), key=cmp_to_key(maven.compare)) == ordered
    assert maven.compare("1.0.Final", "1") == 0
    assert maven.compare("5.2.25.RELEASE", "5.2.25") == 0
    assert maven.compare("1cr", "1rc") == 0


def test_rubygems_prerelease_and_dash() -> None:
    gems = get_comparator("rubygems")
    assert gems.compare("1.0.a", "1.0") == -1
    assert gems.compare("1.0.0", "1") == 0
    assert gems.compare("1.2.0-x86_64-linux", "1.2.0") == -1  # '-' is '.pre.' in Gem::Version
    assert gems.compare("3.0.pre", "3.0.0.rc") == -1  # pre-release words compare in ASCII order
    assert gems.compare("1.0.0.pre3", "1.0.0.rc1") == -1


def test_nuget_and_packagist_details() -> None:
    nuget = get_comparator("nuget")
    assert nuget.compare("1.0", "1.0.0.0") == 0
    assert nuget.compare("1.0.0-BETA", "1.0.0-beta") == 0
    packagist = get_comparator("packagist")
    assert packagist.compare("1.0-dev", "1.0a1") == -1
    assert packagist.compare("1.0", "1.0pl1") == -1
    assert packagist.compare("6.3.0.0", "6.3.0.1") == -1
    assert packagist.compare("dev-main", "0.0.1") == -1


# --- registry --------------------------------------------------------------------------------------


def test_every_package_type_maps_to_a_registered_comparator() -> None:
    for package_type in PackageType:
        key = comparator_key_for_package_type(package_type)
        assert key in COMPARATORS, package_type
    assert comparator_key_for_package_type("deb") == "dpkg"
    assert comparator_key_for_package_type("java-archive") == "maven"
    assert comparator_key_for_package_type("dotnet") == "nuget"


@pytest.mark.parametrize(
    ("ecosystem", "key"),
    [
        ("Debian", "dpkg"),
        ("Debian:12", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Alpine:v3.20", "apk"),
        ("Wolfi", "apk"),
        ("Red Hat:enterprise_linux:9::appstream", "rpm"),
        ("Rocky Linux:9", "rpm"),
        ("AlmaLinux:8", "rpm"),
        ("SUSE:Linux Enterprise Server 15 SP5", "rpm"),
        ("PyPI", "pypi"),
        ("npm", "npm"),
        ("Maven", "maven"),
        ("Go", "go"),
        ("crates.io", "crates.io"),
        ("RubyGems", "rubygems"),
        ("NuGet", "nuget"),
        ("Packagist", "packagist"),
        ("Hex", "semver"),
    ],
)
def test_osv_ecosystems_map_to_comparators(ecosystem: str, key: str) -> None:
    assert comparator_key_for_osv_ecosystem(ecosystem) == key


def test_unknown_names_raise_a_domain_error() -> None:
    with pytest.raises(UnknownEcosystemError):
        get_comparator("cobol")
    with pytest.raises(UnknownEcosystemError):
        comparator_key_for_package_type("binary")
    with pytest.raises(UnknownEcosystemError):
        comparator_key_for_osv_ecosystem("Pub")
