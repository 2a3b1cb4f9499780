"""Whether a version is affected by a stored advisory row, and which fix closes its interval.

A version is affected when it falls in one of the row's ranges (OSV event semantics, the ecosystem's
comparator; through the stored range plan when the database's sort keys are this process's) or is
listed explicitly. A version the comparator cannot parse never raises: the fallback order decides and
the evaluation says so. The fix reported is the ``fixed`` event that closes the interval the version
fell in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from portwarden.core.model.match import MatchFix
from portwarden.core.model.vulnerability import FixState
from portwarden.core.vulns.db import AffectedRow, decode_ranges, decode_strings
from portwarden.core.vulns.matching.construct import trusted
from portwarden.core.vulns.versions import Comparator, get_comparator, in_osv_range
from portwarden.core.vulns.versions.range_plans import (
    SEMVER_FAMILY,
    closing_fix,
    decode_plan,
    has_unparsable_bound,
    in_planned_range,
    order_key,
    range_constraint,
)

FIX_STATES: Mapping[str, FixState] = {state.value: state for state in FixState}


class Evaluation(NamedTuple):
    fix: MatchFix
    constraint: str
    fallback: bool


def evaluate(version: str, row: AffectedRow) -> Evaluation | None:
    """Whether ``version`` is affected by ``row``, and how (None when it is not)."""
    return evaluate_ranges(
        version, row.version_format, row.ranges_text, row.versions_text, row.fix_state, row.fix_versions_text
    )


# Images share packages and advisories share range documents: the same (version, ranges) question comes
# up again and again across the images a process matches. The arguments are the stored texts, so a
# row's lists are only decoded when a question about them is new.
@lru_cache(maxsize=131072)
def evaluate_plan(
    version: str,
    version_format: str,
    plan_text: str,
    versions_text: str,
    fix_state: str,
    fix_versions_text: str,
) -> Evaluation | None:
    """:func:`evaluate_ranges` through the row's stored range plan: bounds come with their sort keys."""
    comparator = get_comparator(version_format)
    for comparator_name, constraint, unparsable_bound, events in decode_plan(plan_text):
        range_comparator = get_comparator(comparator_name)
        version_key = order_key(range_comparator, version)
        if in_planned_range(version, version_key, events, range_comparator):
            return Evaluation(
                _interval_fix(closing_fix(version, version_key, events, range_comparator), fix_state),
                constraint,
                unparsable_bound or not range_comparator.is_valid(version),
            )
    return _explicit_version(version, comparator, versions_text, fix_state, fix_versions_text)


@lru_cache(maxsize=131072)
def evaluate_ranges(
    version: str,
    version_format: str,
    ranges_text: str,
    versions_text: str,
    fix_state: str,
    fix_versions_text: str,
) -> Evaluation | None:
    comparator = get_comparator(version_format)
    for position, (range_type, events) in enumerate(decode_ranges(ranges_text)):
        range_comparator = comparator
        if range_type == "SEMVER" and version_format not in SEMVER_FAMILY:
            range_comparator = get_comparator("semver")
        if in_osv_range(version, events, range_comparator):
            facts = _range_facts(ranges_text, position, range_comparator.name)
            return Evaluation(
                _interval_fix(_closing_fixes(version, facts.fixed, range_comparator), fix_state),
                facts.constraint,
                facts.unparsable_bound or not range_comparator.is_valid(version),
            )
    return _explicit_version(version, comparator, versions_text, fix_state, fix_versions_text)


def _interval_fix(closing: tuple[str, ...], fix_state: str) -> MatchFix:
    """The fix of the interval a version fell in, given the release that closes it (if any)."""
    if closing:
        return _fix(FixState.FIXED, closing)
    if fix_state == FixState.FIXED.value:
        # Other intervals of the advisory were fixed; the one this version is in was not.
        return _fix(FixState.NOT_FIXED, ())
    return _fix(FIX_STATES.get(fix_state) or FixState(fix_state), ())


def _explicit_version(
    version: str, comparator: Comparator, versions_text: str, fix_state: str, fix_versions_text: str
) -> Evaluation | None:
    """The match of a version the advisory lists explicitly (None when it is not listed)."""
    if versions_text == "[]":
        return None
    # Lists of affected versions run to hundreds of entries (PyPI advisories list every release), and
    # most versions are not in them. The list is stored as JSON that escapes only quotes, backslashes
    # and control characters: a version without any of those is listed only if its quoted text occurs.
    if (
        version.isprintable()
        and '"' not in version
        and "\\" not in version
        and f'"{version}"' not in versions_text
    ):
        return None
    if version in decode_strings(versions_text):
        return Evaluation(
            _fix(FIX_STATES.get(fix_state) or FixState(fix_state), decode_strings(fix_versions_text)),
            f"= {version}",
            not comparator.is_valid(version),
        )
    return None


@lru_cache(maxsize=16384)
def _fix(state: FixState, versions: tuple[str, ...]) -> MatchFix:
    # Most advisories close with one of a few releases: identical fixes are one shared (frozen) object.
    return trusted(MatchFix, {"state": state, "versions": versions})


class _RangeFacts(NamedTuple):
    """What a range says independently of the version evaluated against it."""

    # The range as a grype-style constraint (``>= 1.0, < 1.4``), for people reading the match.
    constraint: str
    # Its ``fixed`` bounds, in event order.
    fixed: tuple[str, ...]
    # A bound the comparator cannot parse (its fallback order then decided).
    unparsable_bound: bool


@lru_cache(maxsize=65536)
def _range_facts(ranges_text: str, position: int, comparator_name: str) -> _RangeFacts:
    _, events = decode_ranges(ranges_text)[position]
    pairs = [(kind, bound) for event in events for kind, bound in event.items()]
    return _RangeFacts(
        range_constraint(pairs),
        tuple(bound for kind, bound in pairs if kind == "fixed"),
        has_unparsable_bound(pairs, get_comparator(comparator_name)),
    )


def _closing_fixes(version: str, fixed: Sequence[str], comparator: Comparator) -> tuple[str, ...]:
    """The lowest ``fixed`` version above ``version``: the release that closes its interval."""
    compare = comparator.compare
    lowest: str | None = None
    for bound in fixed:
        if compare(version, bound) < 0 and (lowest is None or compare(bound, lowest) < 0):
            lowest = bound
    return () if lowest is None else (lowest,)
