"""Constraint parsing and evaluation: grype syntax, OSV range events, npm ranges."""

from __future__ import annotations

import pytest

from portwarden.core.errors import InvalidConstraintError
from portwarden.core.vulns.versions import get_comparator, in_osv_range, parse_constraint, parse_npm_range

DPKG = get_comparator("dpkg")
SEMVER = get_comparator("semver")
NPM = get_comparator("npm")
PYPI = get_comparator("pypi")


# --- grype syntax ----------------------------------------------------------------------------------


def test_empty_constraint_matches_everything() -> None:
    for text in ("", "   "):
        constraint = parse_constraint(text)
        assert constraint.matches_everything
        assert constraint.satisfied_by("anything at all", DPKG)


def test_comma_is_and_double_bar_is_or() -> None:
    constraint = parse_constraint("> 0.1.0, < 0.5.0 || > 1.0.0, < 2.0.0")
    assert [
        version
        for version in ("0.0.1", "0.2.0", "0.6.0", "1.5.0", "2.5.0")
        if constraint.satisfied_by(version, SEMVER)
    ] == [
        "0.2.0",
        "1.5.0",
    ]


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("< 2.0", "1.9", True),
        ("<= 2.0", "2.0", True),
        ("> 2.0", "2.0", False),
        (">= 2.0", "2.0", True),
        ("= 2.0", "2.0.0", True),
        ("== 2.0", "2.0.0", True),
        ("!= 2.0", "2.0.1", True),
        ("!= 2.0", "2.0.0", False),
        ("2.0", "2.0.0", True),
        ("  =   2.3.1", "2.3.1", True),
        ("<2.0", "2.0", False),
        ("'4.5.1' || '4.5.2'", "4.5.2", True),
        ('"4.5.1" || "4.5.2"', "4.5.3", False),
    ],
)
def test_operators(text: str, version: str, expected: bool) -> None:
    assert parse_constraint(text).satisfied_by(version, SEMVER) is expected


def test_parsed_constraint_renders_normalized() -> None:
    assert str(parse_constraint(">=1.0,<2.0||==3.0")) == ">= 1.0, < 2.0 || = 3.0"


@pytest.mark.parametrize("text", ["<", ">= 1.0, <", "1.0 ||", "|| 2.0", ">= 1.0 || ,"])
def test_malformed_constraints_raise_a_domain_error(text: str) -> None:
    with pytest.raises(InvalidConstraintError):
        parse_constraint(text)


def test_pep440_local_label_is_ignored_only_when_the_bound_has_none() -> None:
    assert parse_constraint("<= 6.4.0").satisfied_by("6.4+cgr.1", PYPI)
    assert parse_constraint("= 2.0.0").satisfied_by("2.0.0+cgr.1", PYPI)
    assert not parse_constraint("= 2.0.0+cgr.1").satisfied_by("2.0.0", PYPI)
    assert parse_constraint("> 2.0.0+cgr.2").satisfied_by("2.0.0+cgr.12", PYPI)
    # plain ordering still sees the local label
    assert PYPI.compare("6.4+cgr.1", "6.4.0") == 1


def test_unparsable_installed_version_never_raises_in_a_constraint() -> None:
    constraint = parse_constraint(">= 1.0, < 2.0 || < 0.5")
    assert constraint.satisfied_by(
        "not a version", DPKG
    )  # sorts first: caught by "< 0.5", flagged by is_valid
    assert not DPKG.is_valid("not a version")


# --- OSV ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("1.9", True), ("2.0", False), ("2.0-1", False), ("9", False)],
)
def test_osv_introduced_zero_and_fixed(version: str, expected: bool) -> None:
    assert in_osv_range(version, [{"introduced": "0"}, {"fixed": "2.0"}], DPKG) is expected


def test_osv_multiple_windows_and_last_affected() -> None:
    events = [{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"last_affected": "2.4"}]
    verdicts = {
        version: in_osv_range(version, events, SEMVER)
        for version in ("0.9.0", "1.0.0", "1.4.9", "1.5.0", "1.9.9", "2.0.0", "2.4.0", "2.4.1")
    }
    assert verdicts == {
        "0.9.0": False,
        "1.0.0": True,
        "1.4.9": True,
        "1.5.0": False,
        "1.9.9": False,
        "2.0.0": True,
        "2.4.0": True,
        "2.4.1": False,
    }


def test_osv_events_in_any_order_and_combined_dicts() -> None:
    shuffled = [{"fixed": "2.0.0"}, {"introduced": "1.0.0"}]
    assert in_osv_range("1.5.0", shuffled, SEMVER)
    assert not in_osv_range("2.0.0", shuffled, SEMVER)
    assert not in_osv_range("0.5.0", shuffled, SEMVER)


def test_osv_introduced_only_means_every_later_version() -> None:
    assert in_osv_range("99.0.0", [{"introduced": "1.2.0"}], SEMVER)
    assert not in_osv_range("1.1.0", [{"introduced": "1.2.0"}], SEMVER)
    assert not in_osv_range("1.0.0", [], SEMVER)


def test_osv_same_version_opening_and_closing_is_empty() -> None:
    assert not in_osv_range("1.0.0", [{"introduced": "1.0.0"}, {"fixed": "1.0.0"}], SEMVER)


def test_osv_limit_caps_the_range() -> None:
    events = [{"introduced": "0"}, {"limit": "2.0.0"}]
    assert in_osv_range("1.0.0", events, SEMVER)
    assert not in_osv_range("2.0.0", events, SEMVER)
    assert in_osv_range("5.0.0", [{"introduced": "0"}, {"limit": "*"}], SEMVER)


def test_osv_range_with_ecosystem_ordering() -> None:
    rpm = get_comparator("rpm")
    events = [{"introduced": "0"}, {"fixed": "1:2.4.6-1.el9"}]
    assert in_osv_range("2.9.9-9.el9", events, rpm)  # epoch 0 < 1
    assert not in_osv_range("1:2.4.6-1.el9", events, rpm)


# --- npm ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "desugared"),
    [
        ("^1.2.3", ">= 1.2.3, < 2.0.0-0"),
        ("^0.2.3", ">= 0.2.3, < 0.3.0-0"),
        ("^0.0.3", ">= 0.0.3, < 0.0.4-0"),
        ("^0.0", ">= 0.0.0, < 0.1.0-0"),
        ("^1.x", ">= 1.0.0, < 2.0.0-0"),
        ("~1.2.3", ">= 1.2.3, < 1.3.0-0"),
        ("~1.2", ">= 1.2.0, < 1.3.0-0"),
        ("~1", ">= 1.0.0, < 2.0.0-0"),
        ("~>1.2.3", ">= 1.2.3, < 1.3.0-0"),
        ("1.x", ">= 1.0.0, < 2.0.0-0"),
        ("1.2.*", ">= 1.2.0, < 1.3.0-0"),
        ("1.2", ">= 1.2.0, < 1.3.0-0"),
        ("1.2.3 - 2.3.4", ">= 1.2.3, <= 2.3.4"),
        ("1.2 - 2.3", ">= 1.2.0, < 2.4.0-0"),
        (">1.2", ">= 1.3.0"),
        ("<=1.2", "< 1.3.0-0"),
        ("<1.2", "< 1.2.0-0"),
        (">= 1.0.0 < 1.2.5", ">= 1.0.0, < 1.2.5"),
        ("=1.2.3", "= 1.2.3"),
        ("v1.2.3", "= 1.2.3"),
        (">=1.0.0 <1.2.5 || ^2.0.0", ">= 1.0.0, < 1.2.5 || >= 2.0.0, < 3.0.0-0"),
        ("~1.2.3-beta.2", ">= 1.2.3-beta.2, < 1.3.0-0"),
    ],
)
def test_npm_range_desugaring(text: str, desugared: str) -> None:
    assert str(parse_npm_range(text)) == desugared


@pytest.mark.parametrize("text", ["*", "", "x", ">=0.0.0 || *"])
def test_npm_match_all(text: str) -> None:
    assert parse_npm_range(text).satisfied_by("0.0.1-alpha", NPM)


def test_npm_range_evaluation_includes_prereleases() -> None:
    caret = parse_npm_range("^1.2.3")
    assert caret.satisfied_by("1.9.0", NPM)
    assert not caret.satisfied_by("2.0.0", NPM)
    assert not caret.satisfied_by("2.0.0-beta.1", NPM)  # above the 2.0.0-0 ceiling
    assert parse_npm_range("<2.0.0").satisfied_by("2.0.0-beta.1", NPM)
    assert not parse_npm_range("<1.0.0 || >=2.0.0").satisfied_by("1.5.0", NPM)


@pytest.mark.parametrize("text", ["^", ">= 1.0.0 <", "1.2.3.4.5.x", "latest"])
def test_npm_malformed_ranges_raise_a_domain_error(text: str) -> None:
    with pytest.raises(InvalidConstraintError):
        parse_npm_range(text)
