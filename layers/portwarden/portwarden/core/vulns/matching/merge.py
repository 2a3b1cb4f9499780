"""One finding per (package, issue): statements of the same issue are merged.

Statements are the same issue when their ids or aliases overlap (the same id from two feeds, or ids that
alias each other such as GHSA/PYSEC/CVE). The preferred statement (lowest rank: the distro's own feed
first) gives the finding; the others contribute aliases, a severity or fix state it lacks, CVSS scores
and KEV membership.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple

from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import FixState, Severity

# Severity.rank looks its member up in a tuple; sorting every match asks for it often enough to matter.
SEVERITY_RANK: Mapping[Severity, int] = {severity: severity.rank for severity in Severity}


class Candidate(NamedTuple):
    match: Match
    rank: tuple[int, int, str]
    names: frozenset[str]


# A candidate from its three values without the generated ``__new__`` (one per match).
new_candidate = partial(tuple.__new__, Candidate)


def report_order(match: Match) -> tuple[int, str, str, str]:
    return (-SEVERITY_RANK[match.severity], match.package.name, match.package.version, match.id)


def merge_statements(candidates: Sequence[Candidate]) -> list[Match]:
    """One match per issue: candidates whose ids or aliases overlap are one issue."""
    ordered = sorted(candidates, key=lambda c: c.rank)
    names_seen: set[str] = set()
    names_count = 0
    for candidate in ordered:
        names_seen |= candidate.names
        names_count += len(candidate.names)
    if len(names_seen) == names_count:
        # No name is shared: every candidate is an issue of its own (the common case).
        return [candidate.match for candidate in ordered]
    # Groups keep their creation order; a group absorbed into an older one is left as None. Every name
    # points at its group, so a candidate finds the groups it joins without testing them one by one.
    groups: list[list[Candidate] | None] = []
    names_of_group: list[set[str]] = []
    group_of_name: dict[str, int] = {}
    for candidate in ordered:
        joined = sorted({group_of_name[name] for name in candidate.names if name in group_of_name})
        if not joined:
            group_of_name.update(dict.fromkeys(candidate.names, len(groups)))
            groups.append([candidate])
            names_of_group.append(set(candidate.names))
            continue
        first = joined[0]
        members = groups[first]
        assert members is not None
        members.append(candidate)
        names = names_of_group[first]
        names |= candidate.names
        # The candidate may bridge groups that were separate until now (the newest is absorbed first).
        for other in reversed(joined[1:]):
            absorbed = groups[other]
            assert absorbed is not None
            members.extend(absorbed)
            groups[other] = None
            names |= names_of_group[other]
        group_of_name.update(dict.fromkeys(names, first))
    merged: list[Match] = []
    for group in groups:
        if group is None:
            continue
        if len(group) == 1:
            merged.append(group[0].match)
            continue
        group.sort(key=lambda c: c.rank)
        best = group[0].match
        aliases = tuple(
            dict.fromkeys(name for c in group for name in (c.match.id, *c.match.aliases) if name != best.id)
        )
        update: dict[str, object] = {"aliases": aliases}
        if best.severity is Severity.UNKNOWN:
            graded = [c.match.severity for c in group if c.match.severity is not Severity.UNKNOWN]
            if graded:
                update["severity"] = graded[0]
        if best.fix.state is FixState.UNKNOWN:
            known = [c.match.fix for c in group if c.match.fix.state is not FixState.UNKNOWN]
            if known:
                update["fix"] = known[0]
        cvss = tuple(dict.fromkeys(score for c in group for score in c.match.cvss))
        update["cvss"] = cvss
        update["kev"] = any(c.match.kev for c in group)
        merged.append(best.model_copy(update=update))
    return merged
