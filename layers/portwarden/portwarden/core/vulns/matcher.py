"""Packages x vulnerability database -> matches: the assembly of the parts in ``core.vulns.matching``.

Rules (``docs/vulnerabilities.md`` has the long form), and the module that applies each:

* ``matching.lookups``: OS packages are looked up in their distro's namespace through their **source**
  package (and their binary name when it differs); language packages in their ecosystem namespace
  under their normalized name.
* ``matching.ranges``: a version is affected when it falls in one of the advisory's ranges (OSV event
  semantics, the ecosystem's comparator) or is listed explicitly; a version the comparator cannot
  parse never raises (the fallback order decides and ``matched_by.fallback_ordering`` says so). The
  fix reported is the ``fixed`` event that closes the interval the version fell in.
* ``matching.records``: severity is the package's own grade in the source (Debian urgency per
  package), else the advisory's, else NVD's; CVSS vectors from the advisory and NVD are all kept; KEV
  membership and the EPSS score are attached by CVE id.
* ``matching.merge``: one finding per (package, vulnerability): statements of the same issue (the same
  id from two feeds, or ids that alias each other such as GHSA/PYSEC/CVE) are merged, the distro's own
  feed first.

This module runs the lookups against the database by namespace, evaluates each row, and builds the
matches (``matching.construct`` makes the frozen models without re-validating typed values).
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence

from portwarden.core.ecosystems import ecosystem
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage
from portwarden.core.model.package import Package
from portwarden.core.model.vulnerability import Severity
from portwarden.core.vulns.db import AffectedRow, VulnerabilityDb
from portwarden.core.vulns.matching.construct import all_fields_set, complete
from portwarden.core.vulns.matching.construct import new_object as _new_object
from portwarden.core.vulns.matching.construct import set_attribute as _set_attribute
from portwarden.core.vulns.matching.lookups import Lookup, plan_lookups
from portwarden.core.vulns.matching.merge import Candidate, merge_statements, new_candidate, report_order
from portwarden.core.vulns.matching.ranges import Evaluation, evaluate, evaluate_plan, evaluate_ranges
from portwarden.core.vulns.matching.records import RecordView, record_view

__all__ = ["Matcher", "evaluate", "matcher_name", "plan_lookups"]

_UNKNOWN = Severity.UNKNOWN.value
_SEVERITIES: Mapping[str, Severity] = {severity.value: severity for severity in Severity}
# Records whose shared match parts a matcher keeps (as many as the database keeps records).
_VIEW_CACHE_RECORDS = 65_536


def matcher_name(package: Package) -> str:
    """The matcher name grype gives a match of this package's type (``matched_by.matcher``)."""
    found = ecosystem(package.type)
    return found.matcher if found is not None else f"{package.type.value}-matcher"


class Matcher:
    """Matches packages against one opened database. Reuse it: comparators and advisories are cached."""

    def __init__(self, db: VulnerabilityDb) -> None:
        self.db = db
        # Per record: what all of its matches share (the database never changes under a matcher).
        self._views: dict[tuple[str, str, str], RecordView] = {}

    def match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        # The cyclic garbage collector is paused while a match builds its results (see _pause_cyclic_gc).
        resume = _pause_cyclic_gc()
        try:
            return self._match(packages, distro)
        finally:
            if resume:
                gc.enable()

    def _match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        by_namespace: dict[str, list[Lookup]] = {}
        for lookup in plan_lookups(packages, distro):
            by_namespace.setdefault(lookup.namespace, []).append(lookup)

        # Stored range plans when the database's sort keys are this process's, else the ranges.
        plans_usable = self.db.plans_usable
        hits: list[tuple[Lookup, AffectedRow, Evaluation]] = []
        for namespace, group in by_namespace.items():
            rows_by_name = self.db.affected_by_name(namespace, [lookup.name for lookup in group])
            for lookup in group:
                version = lookup.version
                for row in rows_by_name.get(lookup.name, ()):
                    # One unpacking instead of a property call per field: this runs for every row.
                    _, _, _, _, version_format, fix_state, fix_versions_text, ranges_text, versions_text = (
                        row[:9]
                    )
                    plan_text = row[11]
                    if plans_usable and plan_text is not None:
                        evaluation = evaluate_plan(
                            version, version_format, plan_text, versions_text, fix_state, fix_versions_text
                        )
                    else:
                        evaluation = evaluate_ranges(
                            version, version_format, ranges_text, versions_text, fix_state, fix_versions_text
                        )
                    if evaluation is not None:
                        hits.append((lookup, row, evaluation))
        if not hits:
            return []

        view_of = self._views
        if len(view_of) > _VIEW_CACHE_RECORDS:
            view_of.clear()
        new_keys = [
            key
            # An affected row starts with its record's key: (feed, id, namespace).
            for key in dict.fromkeys(row[:3] for _, row, _ in hits)
            if key not in view_of
        ]
        if new_keys:
            records = self.db.vulnerabilities(new_keys)
            cve_ids = sorted({cve for record in records.values() for cve in record.cve_ids})
            nvd = self.db.nvd(cve_ids) if cve_ids else {}
            kev = self.db.kev(cve_ids) if cve_ids else set()
            epss = self.db.epss(cve_ids) if cve_ids else {}
            for key, record in records.items():
                view_of[key] = record_view(record, nvd, kev, epss)

        # Matches and their details are assembled as ``construct.complete`` does, written out: there is
        # one of each per match.
        new_object, set_attribute = _new_object, _set_attribute
        match_fields, detail_fields = all_fields_set(Match), all_fields_set(MatchDetail)
        # Parts shared by several matches are built once (they are immutable): per package, its
        # MatchedPackage and matcher name.
        package_of: dict[int, tuple[MatchedPackage, str]] = {}
        candidates: dict[int, list[Candidate]] = {}
        for lookup, row, evaluation in hits:
            view = view_of.get(row[:3])
            if view is None:
                continue
            index, _, _, _, searched_by, primary = lookup
            fix, constraint, fallback = evaluation
            known_package = package_of.get(index)
            if known_package is None:
                package = packages[index]
                known_package = package_of[index] = (
                    complete(
                        MatchedPackage,
                        {
                            "name": package.name,
                            "version": package.version,
                            "type": package.type.value,
                            "purl": package.purl,
                            "location": package.locations[0].path if package.locations else None,
                        },
                    ),
                    matcher_name(package),
                )
            matched_package, package_matcher = known_package
            detail = new_object(MatchDetail)
            set_attribute(
                detail,
                "__dict__",
                {
                    "matcher": package_matcher,
                    "namespace": row[2],
                    "searched_by": searched_by,
                    "constraint": constraint,
                    "version_format": row[4],
                    "fallback_ordering": fallback,
                },
            )
            set_attribute(detail, "__pydantic_fields_set__", detail_fields)
            set_attribute(detail, "__pydantic_extra__", None)
            set_attribute(detail, "__pydantic_private__", None)
            # The record's share of the fields, in field order; the rest is this match's own.
            values = view.match_values.copy()
            row_severity = row[9]
            if row_severity and row_severity != _UNKNOWN:
                # The package's own grade in its source (Debian urgency) comes first.
                values["severity"] = _SEVERITIES.get(row_severity) or Severity(row_severity)
            values["fix"] = fix
            values["package"] = matched_package
            values["matched_by"] = detail
            match = new_object(Match)
            set_attribute(match, "__dict__", values)
            set_attribute(match, "__pydantic_fields_set__", match_fields)
            set_attribute(match, "__pydantic_extra__", None)
            set_attribute(match, "__pydantic_private__", None)
            # Lower ranks are preferred when statements are merged; the source-package search is the
            # primary evidence for OS packages.
            candidate = new_candidate((match, view.rank if primary else view.secondary_rank, view.names))
            group_of_package = candidates.get(index)
            if group_of_package is None:
                candidates[index] = [candidate]
            else:
                group_of_package.append(candidate)

        matches: list[Match] = []
        for group_of_package in candidates.values():
            if len(group_of_package) == 1:
                matches.append(group_of_package[0].match)
            else:
                matches.extend(merge_statements(group_of_package))
        matches.sort(key=report_order)
        return matches


def _pause_cyclic_gc() -> bool:
    """Keeps the cyclic garbage collector from running while a match builds its results.

    A match allocates tens of thousands of small objects (rows, parsed versions, matches), none of them
    in reference cycles, and keeps them until it returns. Every collection the allocation count would
    trigger meanwhile finds nothing to free, and a full one walks the whole heap of the process: on a
    large match that was a fifth of the time. Reference counting frees memory as usual; collections
    resume when the match returns (re-enabling collects nothing by itself: the next allocation that
    crosses a threshold does, as it would have anyway). Returns whether the caller must re-enable it:
    a collector already disabled stays so.
    """
    if not gc.isenabled():
        return False
    gc.disable()
    return True
