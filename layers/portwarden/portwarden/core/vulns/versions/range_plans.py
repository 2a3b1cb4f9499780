"""OSV ranges worked out ahead of matching: constraint text, bound validity and bound sort keys.

What a range says independently of the version evaluated against it is worked out once, when a
database is built, and stored next to the range as a *plan* (JSON): per range, the comparator that
orders it, the grype-style constraint a match reports, whether a bound is unparsable, and each event
with its bound's order key (:meth:`ParsingComparator.order_key`). Matching then compares strings
instead of parsing bounds. A bound without a key (a comparator without order keys, an odd bound) is
compared through its comparator, so a plan never changes a result, only its cost.

Stored keys are only as good as the code that made them: :func:`sort_key_fingerprint` summarizes the
key format, a database records it, and a reader whose fingerprint differs ignores the plans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, cast

from portwarden.core.errors import UnknownEcosystemError
from portwarden.core.vulns.versions.base import Comparator
from portwarden.core.vulns.versions.registry import COMPARATORS, get_comparator

# Version formats whose advisories' SEMVER ranges use their own comparator; any other format's
# SEMVER ranges are ordered by plain SemVer.
SEMVER_FAMILY = frozenset({"semver", "npm", "go", "crates.io"})

# Versions that exercise every comparator's key layout (epochs, tildes, pre-releases, local labels,
# build numbers, unparsable text): a change to any key format changes some of their keys.
_FINGERPRINT_PROBES = (
    "0",
    "1",
    "1.0",
    "1.0.0",
    "2:1.2.3-4ubuntu0.1",
    "1.0~rc1-1",
    "1.0^git1",
    "v1.2.3-alpha.1+build.5",
    "1.2.3.4-beta",
    "0.0.0-20191109021931-daa7c04131f5",
    "1!2.0a1.post3.dev4+local.7",
    "1.0.dev1",
    "0.9-doduo",
    "1.2_p1-r3",
    "1.0-SNAPSHOT",
    "not a version",
    "",
)


def order_key(comparator: Comparator, version: str) -> str | None:
    """The comparator's order key of ``version``, or None when it has none."""
    key_of = getattr(comparator, "order_key", None)
    return key_of(version) if key_of is not None else None


@lru_cache(maxsize=1)
def sort_key_fingerprint() -> str:
    """A digest of every comparator's order keys for a fixed set of versions."""
    keys = {
        name: [order_key(comparator, probe) for probe in _FINGERPRINT_PROBES]
        for name, comparator in sorted(COMPARATORS.items())
    }
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def range_comparator_name(version_format: str, range_type: str) -> str:
    """The comparator that orders one range of an advisory whose versions are ``version_format``."""
    if range_type == "SEMVER" and version_format not in SEMVER_FAMILY:
        return "semver"
    return version_format


def range_constraint(events: Sequence[tuple[str, str]]) -> str:
    """The range as a grype-style constraint (``>= 1.0, < 1.4``), for people reading a match."""
    parts: list[str] = []
    for kind, bound in events:
        if kind == "introduced":
            if bound != "0":
                parts.append(f">= {bound}")
        elif kind == "fixed":
            parts.append(f"< {bound}")
        elif kind == "last_affected":
            parts.append(f"<= {bound}")
        elif kind == "limit" and bound != "*":
            parts.append(f"< {bound} (limit)")
    return ", ".join(parts) if parts else "all versions"


def has_unparsable_bound(events: Sequence[tuple[str, str]], comparator: Comparator) -> bool:
    """Whether a bound of the range is one ``comparator`` cannot parse (its fallback order decides)."""
    return any(bound not in ("0", "*") and not comparator.is_valid(bound) for _, bound in events)


def build_plan(version_format: str, ranges: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str | None:
    """The stored plan of an affected package's ranges ((type, [(kind, bound)…]) each), or None.

    Per range: ``[comparator, constraint, unparsable bound, [kind, bound, key, kind, bound, key…]]``
    (flat events: fewer objects to decode). None when a comparator is unknown: the matcher then
    evaluates the ranges themselves (and reports the unknown ecosystem as it always has).
    """
    plan: list[list[Any]] = []
    for range_type, events in ranges:
        name = range_comparator_name(version_format, range_type)
        try:
            comparator = get_comparator(name)
        except UnknownEcosystemError:
            return None
        flat: list[str | None] = []
        for kind, bound in events:
            flat.extend((kind, bound, order_key(comparator, bound)))
        plan.append([name, range_constraint(events), has_unparsable_bound(events, comparator), flat])
    return json.dumps(plan, separators=(",", ":"), ensure_ascii=False)


# One range of a plan, as stored: [comparator name, constraint, unparsable bound, flat events], the
# events being ``kind, bound, order key`` triples one after the other (the key None when only the
# comparator can place the bound). Plans are used as JSON decodes them: no object per event.
PlannedRange = tuple[str, str, bool, list[str | None]]
PlannedEvent = tuple[str, str, "str | None"]

_decode_json = json.JSONDecoder().raw_decode


@lru_cache(maxsize=65536)
def decode_plan(text: str) -> list[PlannedRange]:
    """A stored plan's ranges, decoded once per distinct text (shared: never modify them)."""
    return cast("list[PlannedRange]", _decode_json(text)[0])


def planned_events(flat: list[str | None]) -> Iterator[PlannedEvent]:
    """The (kind, bound, key) triples of a range's flat event list."""
    triples = iter(flat)
    return cast("Iterator[PlannedEvent]", zip(triples, triples, triples, strict=False))


def _order(
    version: str, version_key: str | None, bound: str, bound_key: str | None, comparator: Comparator
) -> int:
    """compare(version, bound): by the keys when both have one, else through the comparator."""
    if version_key is not None and bound_key is not None:
        return (version_key > bound_key) - (version_key < bound_key)
    return comparator.compare(version, bound)


def in_planned_range(
    version: str, version_key: str | None, events: list[str | None], comparator: Comparator
) -> bool:
    """:func:`in_osv_range` of one planned range: the same walk, comparing keys where it can."""
    deciding: PlannedEvent | None = None
    deciding_opens = False
    limits: list[PlannedEvent] = []
    for event in planned_events(events):
        kind, bound, key = event
        if kind == "introduced":
            if bound != "0" and _order(version, version_key, bound, key, comparator) < 0:
                continue
            opens = True
        elif kind == "fixed":
            if _order(version, version_key, bound, key, comparator) < 0:
                continue
            opens = False
        elif kind == "last_affected":
            if _order(version, version_key, bound, key, comparator) <= 0:
                continue
            opens = False
        elif kind == "limit":
            limits.append(event)
            continue
        else:
            continue
        if deciding is None:
            deciding, deciding_opens = event, opens
            continue
        # The order of two events, where an ``introduced: "0"`` precedes every version.
        deciding_bound = deciding[1]
        if bound == deciding_bound:
            order = 0
        elif bound == "0" or deciding_bound == "0":
            order = -1 if bound == "0" else 1
        else:
            order = _order(bound, key, deciding_bound, deciding[2], comparator)
        if order > 0 or (order == 0 and not opens):
            deciding, deciding_opens = event, opens
    if deciding is None or not deciding_opens:
        return False
    return not limits or any(
        bound == "*" or _order(version, version_key, bound, key, comparator) < 0 for _, bound, key in limits
    )


def closing_fix(
    version: str, version_key: str | None, events: list[str | None], comparator: Comparator
) -> tuple[str, ...]:
    """The lowest ``fixed`` bound above ``version``: the release that closes its interval."""
    lowest: str | None = None
    lowest_key: str | None = None
    for kind, bound, key in planned_events(events):
        if (
            kind == "fixed"
            and _order(version, version_key, bound, key, comparator) < 0
            and (lowest is None or _order(bound, key, lowest, lowest_key, comparator) < 0)
        ):
            lowest, lowest_key = bound, key
    return () if lowest is None else (lowest,)
