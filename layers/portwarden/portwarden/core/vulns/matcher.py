"""Packages x vulnerability database -> matches.

Rules (``docs/vulnerabilities.md`` has the long form):

* OS packages (deb, apk, rpm) are looked up in their distro's namespace (``debian:12``…) through their
  **source** package (dpkg ``Source:``, apk origin, rpm source rpm), with the source version; the binary
  name is searched too when it differs, since some advisories name binaries.
* Language packages are looked up in their ecosystem namespace under their normalized name (PEP 503,
  Maven ``groupId:artifactId``, npm lowercase with its scope, Go module path as is).
* A version is affected when it falls in one of the advisory's ranges (OSV event semantics, the
  ecosystem's comparator) or is listed explicitly. A version the comparator cannot parse never raises:
  the fallback order decides and the match is flagged (``matched_by.fallback_ordering``).
* The fix reported is the ``fixed`` event that closes the interval the version fell in.
* Severity: the package's own grade in the source (Debian urgency per package), else the advisory's
  severity from its distro or ecosystem source, else NVD's. CVSS vectors from the advisory and NVD are
  all kept; KEV membership and the EPSS score are attached by CVE id.
* One finding per (package, vulnerability): statements of the same issue (the same id from two feeds,
  or ids that alias each other such as GHSA/PYSEC/CVE) are merged, the distro's own feed first.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel

from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchCvss, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.vulns.db import (
    AffectedRow,
    NvdRow,
    VulnerabilityDb,
    VulnerabilityRow,
    decode_cvss_fields,
    decode_ranges,
    decode_strings,
)
from portwarden.core.vulns.namespaces import (
    OS_PACKAGE_TYPES,
    distro_namespace,
    language_lookup_name,
    language_namespace,
    lookup_name,
)
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

# Matcher names, as grype spells them, so a user comparing the two tools sees the same words.
MATCHER_NAMES: dict[PackageType, str] = {
    PackageType.DEB: "dpkg-matcher",
    PackageType.APK: "apk-matcher",
    PackageType.RPM: "rpm-matcher",
    PackageType.PYTHON: "python-matcher",
    PackageType.NPM: "javascript-matcher",
    PackageType.JAVA_ARCHIVE: "java-matcher",
    PackageType.GO_MODULE: "go-module-matcher",
    PackageType.RUST_CRATE: "rust-matcher",
    PackageType.GEM: "ruby-gem-matcher",
    PackageType.PHP_COMPOSER: "php-composer-matcher",
    PackageType.DOTNET: "dotnet-matcher",
}

# Feeds written by the distribution itself outrank an aggregator's restatement of the same issue.
_NATIVE_DISTRO_SOURCES = frozenset({"debian-tracker", "alpine-secdb"})
# Versions that name no release: nothing can be said about them.
_UNVERSIONED = frozenset({"", "(devel)", "unknown"})
# Severity.rank looks its member up in a tuple; sorting every match asks for it often enough to matter.
_SEVERITY_RANK: Mapping[Severity, int] = {severity: severity.rank for severity in Severity}
_UNKNOWN = Severity.UNKNOWN.value
_SEVERITIES: Mapping[str, Severity] = {severity.value: severity for severity in Severity}
_FIX_STATES: Mapping[str, FixState] = {state.value: state for state in FixState}
# Records whose shared match parts a matcher keeps (as many as the database keeps records).
_VIEW_CACHE_RECORDS = 65_536

_Model = TypeVar("_Model", bound=BaseModel)
_set_attribute = object.__setattr__
_new_object = object.__new__
# Per model: the defaults of its optional fields (every default here is immutable, so sharing is safe).
_TRAILING_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def _trusted(model: type[_Model], values: dict[str, Any]) -> _Model:
    """An instance of ``model`` from values that already have the field types, without validation.

    The same object ``model(**values)`` makes (same fields, same fields-set, frozen), as pydantic's
    ``model_construct`` makes it, minus its per-field bookkeeping, which costs more than validating.
    ``values`` must name the fields in declaration order; omitted trailing fields take their default.
    Only for values the matcher itself built from typed rows: anything else goes through validation.
    """
    instance = _new_object(model)
    fields_set = set(values)
    defaults = _TRAILING_DEFAULTS.get(model)
    if defaults is None:
        defaults = _TRAILING_DEFAULTS[model] = {
            name: info.get_default(call_default_factory=True)
            for name, info in model.model_fields.items()
            if not info.is_required()
        }
    if len(values) < len(model.__pydantic_fields__):
        for name, default in defaults.items():
            if name not in values:
                values[name] = default
    _set_attribute(instance, "__dict__", values)
    _set_attribute(instance, "__pydantic_fields_set__", fields_set)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


# Per model: the fields-set of an instance that sets every field. One set serves every such instance:
# pydantic only ever adds names to a fields-set (all already in it) and copies it before a model_copy
# updates it, so sharing is invisible, and it spares a set (and the garbage collector's look at it) per
# match.
_ALL_FIELDS_SET: dict[type[BaseModel], set[str]] = {}


def _all_fields_set(model: type[BaseModel]) -> set[str]:
    fields_set = _ALL_FIELDS_SET.get(model)
    if fields_set is None:
        fields_set = _ALL_FIELDS_SET[model] = set(model.__pydantic_fields__)
    return fields_set


def _complete(model: type[_Model], values: dict[str, Any]) -> _Model:
    """:func:`_trusted` for ``values`` that name every field of ``model``, in declaration order."""
    instance = _new_object(model)
    fields_set = _all_fields_set(model)
    _set_attribute(instance, "__dict__", values)
    _set_attribute(instance, "__pydantic_fields_set__", fields_set)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


class _Lookup(NamedTuple):
    """One search: a package, the name it is searched under, and the version to compare."""

    package_index: int
    namespace: str
    name: str
    version: str
    searched_by: str
    # A search by the package's own (or source) name, rather than a binary name of an OS package.
    primary: bool


class _Candidate(NamedTuple):
    match: Match
    rank: tuple[int, int, str]
    names: frozenset[str]


# A candidate from its three values without the generated ``__new__`` (one per match).
_new_candidate = partial(tuple.__new__, _Candidate)


def plan_lookups(packages: Sequence[Package], distro: Distro | None) -> list[_Lookup]:
    """The searches to run for ``packages``; packages no namespace covers are left out."""
    os_namespace = distro_namespace(distro)
    lookups: list[_Lookup] = []
    for index, package in enumerate(packages):
        if package.type in OS_PACKAGE_TYPES:
            if os_namespace is None:
                continue
            source_name = str(package.metadata.get("source_name") or "").strip()
            source_version = str(package.metadata.get("source_version") or "").strip()
            if source_name:
                lookups.append(
                    _Lookup(
                        index,
                        os_namespace,
                        lookup_name(os_namespace, source_name),
                        source_version or package.version,
                        f"source-package:{source_name}",
                        True,
                    )
                )
            if source_name != package.name:
                lookups.append(
                    _Lookup(
                        index,
                        os_namespace,
                        lookup_name(os_namespace, package.name),
                        package.version,
                        f"binary-package:{package.name}",
                        False,
                    )
                )
            continue
        namespace = language_namespace(package.type)
        if namespace is None or package.version.strip() in _UNVERSIONED:
            continue
        name = language_lookup_name(package, namespace)
        if name is None:
            continue
        lookups.append(_Lookup(index, namespace, name, package.version, f"package-name:{name}", True))
    return lookups


class Matcher:
    """Matches packages against one opened database. Reuse it: comparators and advisories are cached."""

    def __init__(self, db: VulnerabilityDb) -> None:
        self.db = db
        # Per record: what all of its matches share (the database never changes under a matcher).
        self._views: dict[tuple[str, str, str], _RecordView] = {}

    def match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        # The cyclic garbage collector is paused while a match builds its results (see _pause_cyclic_gc).
        resume = _pause_cyclic_gc()
        try:
            return self._match(packages, distro)
        finally:
            if resume:
                gc.enable()

    def _match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        by_namespace: dict[str, list[_Lookup]] = {}
        for lookup in plan_lookups(packages, distro):
            by_namespace.setdefault(lookup.namespace, []).append(lookup)

        # Stored range plans when the database's sort keys are this process's, else the ranges.
        plans_usable = self.db.plans_usable
        hits: list[tuple[_Lookup, AffectedRow, _Evaluation]] = []
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
                        evaluation = _evaluate_plan(
                            version, version_format, plan_text, versions_text, fix_state, fix_versions_text
                        )
                    else:
                        evaluation = _evaluate(
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
                view_of[key] = _record_view(record, nvd, kev, epss)

        # Matches and their details are assembled as _complete does, written out: there is one of each
        # per match.
        new_object, set_attribute = _new_object, _set_attribute
        match_fields, detail_fields = _all_fields_set(Match), _all_fields_set(MatchDetail)
        # Parts shared by several matches are built once (they are immutable): per package, its
        # MatchedPackage and matcher name.
        package_of: dict[int, tuple[MatchedPackage, str]] = {}
        candidates: dict[int, list[_Candidate]] = {}
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
                    _complete(
                        MatchedPackage,
                        {
                            "name": package.name,
                            "version": package.version,
                            "type": package.type.value,
                            "purl": package.purl,
                            "location": package.locations[0].path if package.locations else None,
                        },
                    ),
                    MATCHER_NAMES.get(package.type) or f"{package.type.value}-matcher",
                )
            matched_package, matcher_name = known_package
            detail = new_object(MatchDetail)
            set_attribute(
                detail,
                "__dict__",
                {
                    "matcher": matcher_name,
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
            candidate = _new_candidate((match, view.rank if primary else view.secondary_rank, view.names))
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
                matches.extend(_merge_statements(group_of_package))
        matches.sort(key=_report_order)
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


def _report_order(match: Match) -> tuple[int, str, str, str]:
    return (-_SEVERITY_RANK[match.severity], match.package.name, match.package.version, match.id)


class _RecordView(NamedTuple):
    """What every match of one record shares: worked out once per record and matcher."""

    # The fields of a Match that come from the record, in field order: the severity is the advisory's,
    # else NVD's (a package's own grade overrides both); CVSS, KEV and EPSS are what the record's CVE
    # ids bring. ``fix``, ``package`` and ``matched_by`` are placeholders each match fills in.
    match_values: dict[str, Any]
    # The record's id and aliases: statements sharing any of them are one issue.
    names: frozenset[str]
    # Preference when statements are merged (lower first): the distribution's own feed, then the id;
    # found by the source package (or a language package's name), or else by a binary name.
    rank: tuple[int, int, str]
    secondary_rank: tuple[int, int, str]


def _record_view(
    record: VulnerabilityRow,
    nvd: Mapping[str, NvdRow],
    kev: set[str],
    epss: Mapping[str, tuple[float, float]],
) -> _RecordView:
    cves = record.cve_ids
    nvd_rows = [nvd[cve] for cve in cves if cve in nvd] if nvd else []
    severity = record.severity
    if severity is Severity.UNKNOWN:
        for entry in nvd_rows:
            if entry.severity is not Severity.UNKNOWN:
                severity = entry.severity
                break
    scores = [epss[cve] for cve in cves if cve in epss] if epss else []
    best_epss = max(scores) if scores else None
    if record.id.startswith("GHSA-"):
        id_rank = 0
    elif record.id.startswith("CVE-"):
        id_rank = 1
    else:
        id_rank = 2
    native_rank = 0 if record.source in _NATIVE_DISTRO_SOURCES else 1
    match_values = {
        "id": record.id,
        "aliases": record.aliases,
        "severity": severity,
        "cvss": _cvss(record, nvd_rows),
        "fix": None,
        "package": None,
        "namespace": record.namespace,
        "urls": record.urls,
        "description": record.summary or record.description,
        "published": record.published,
        "kev": bool(kev) and any(cve in kev for cve in cves),
        "epss": best_epss[0] if best_epss else None,
        "epss_percentile": best_epss[1] if best_epss else None,
        "matched_by": None,
    }
    # Positional, in field order: keyword construction of a NamedTuple costs twice as much.
    return _RecordView(
        match_values,
        frozenset((record.id, *record.aliases)),
        (native_rank, id_rank, record.id),
        (native_rank, id_rank + 3, record.id),
    )


class _Evaluation(NamedTuple):
    fix: MatchFix
    constraint: str
    fallback: bool


def evaluate(version: str, row: AffectedRow) -> _Evaluation | None:
    """Whether ``version`` is affected by ``row``, and how (None when it is not)."""
    return _evaluate(
        version, row.version_format, row.ranges_text, row.versions_text, row.fix_state, row.fix_versions_text
    )


# Images share packages and advisories share range documents: the same (version, ranges) question comes
# up again and again across the images a process matches. The arguments are the stored texts, so a
# row's lists are only decoded when a question about them is new.
@lru_cache(maxsize=131072)
def _evaluate_plan(
    version: str,
    version_format: str,
    plan_text: str,
    versions_text: str,
    fix_state: str,
    fix_versions_text: str,
) -> _Evaluation | None:
    """:func:`_evaluate` through the row's stored range plan: bounds come with their sort keys."""
    comparator = get_comparator(version_format)
    for comparator_name, constraint, unparsable_bound, events in decode_plan(plan_text):
        range_comparator = get_comparator(comparator_name)
        version_key = order_key(range_comparator, version)
        if in_planned_range(version, version_key, events, range_comparator):
            return _Evaluation(
                _interval_fix(closing_fix(version, version_key, events, range_comparator), fix_state),
                constraint,
                unparsable_bound or not range_comparator.is_valid(version),
            )
    return _explicit_version(version, comparator, versions_text, fix_state, fix_versions_text)


@lru_cache(maxsize=131072)
def _evaluate(
    version: str,
    version_format: str,
    ranges_text: str,
    versions_text: str,
    fix_state: str,
    fix_versions_text: str,
) -> _Evaluation | None:
    comparator = get_comparator(version_format)
    for position, (range_type, events) in enumerate(decode_ranges(ranges_text)):
        range_comparator = comparator
        if range_type == "SEMVER" and version_format not in SEMVER_FAMILY:
            range_comparator = get_comparator("semver")
        if in_osv_range(version, events, range_comparator):
            facts = _range_facts(ranges_text, position, range_comparator.name)
            return _Evaluation(
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
    return _fix(_FIX_STATES.get(fix_state) or FixState(fix_state), ())


def _explicit_version(
    version: str, comparator: Comparator, versions_text: str, fix_state: str, fix_versions_text: str
) -> _Evaluation | None:
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
        return _Evaluation(
            _fix(_FIX_STATES.get(fix_state) or FixState(fix_state), decode_strings(fix_versions_text)),
            f"= {version}",
            not comparator.is_valid(version),
        )
    return None


@lru_cache(maxsize=16384)
def _fix(state: FixState, versions: tuple[str, ...]) -> MatchFix:
    # Most advisories close with one of a few releases: identical fixes are one shared (frozen) object.
    return _trusted(MatchFix, {"state": state, "versions": versions})


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


def _cvss(record: VulnerabilityRow, nvd: Sequence[NvdRow]) -> tuple[MatchCvss, ...]:
    own = _record_cvss(record.cvss_text)
    if not nvd:
        return own
    # The record's scores first, then NVD's, each (version, vector, source) once.
    seen: dict[tuple[str, str, str | None], MatchCvss] = {
        (score.version, score.vector, score.source): score for score in own
    }
    for entry in nvd:
        for nvd_score in entry.cvss:
            key = (nvd_score.version, nvd_score.vector, nvd_score.source)
            if key not in seen:
                seen[key] = _match_cvss(
                    nvd_score.version, nvd_score.vector, nvd_score.base_score, nvd_score.source
                )
    return tuple(seen.values())


@lru_cache(maxsize=16384)
def _record_cvss(cvss_text: str) -> tuple[MatchCvss, ...]:
    """A record's own scores as a match reports them, each (version, vector, source) once."""
    seen: dict[tuple[str, str, str | None], MatchCvss] = {}
    for version, vector, base_score, source in decode_cvss_fields(cvss_text):
        key = (version, vector, source)
        if key not in seen:
            seen[key] = _match_cvss(version, vector, base_score, source)
    return tuple(seen.values())


def _match_cvss(version: str, vector: str, score: float | None, source: str | None) -> MatchCvss:
    return _trusted(MatchCvss, {"version": version, "vector": vector, "score": score, "source": source})


def _merge_statements(candidates: Sequence[_Candidate]) -> list[Match]:
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
    groups: list[list[_Candidate] | None] = []
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
