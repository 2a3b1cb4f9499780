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

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchCvss, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.vulns.db import AffectedRow, NvdRow, VulnerabilityDb, VulnerabilityRow, decode_ranges
from portwarden.core.vulns.feeds.naming import normalize_package_name
from portwarden.core.vulns.namespaces import (
    OS_PACKAGE_TYPES,
    distro_namespace,
    language_lookup_name,
    language_namespace,
)
from portwarden.core.vulns.versions import Comparator, get_comparator, in_osv_range

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
_SEMVER_FAMILY = frozenset({"semver", "npm", "go", "crates.io"})


@dataclass(frozen=True)
class _Lookup:
    """One search: a package, the name it is searched under, and the version to compare."""

    index: int
    namespace: str
    name: str
    version: str
    searched_by: str


@dataclass
class _Candidate:
    match: Match
    rank: tuple[int, int, str]
    names: set[str] = field(default_factory=set)


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
                        normalize_package_name(os_namespace, source_name),
                        source_version or package.version,
                        f"source-package:{source_name}",
                    )
                )
            if source_name != package.name:
                lookups.append(
                    _Lookup(
                        index,
                        os_namespace,
                        normalize_package_name(os_namespace, package.name),
                        package.version,
                        f"binary-package:{package.name}",
                    )
                )
            continue
        namespace = language_namespace(package.type)
        if namespace is None or package.version.strip() in _UNVERSIONED:
            continue
        name = language_lookup_name(package, namespace)
        if name is None:
            continue
        lookups.append(_Lookup(index, namespace, name, package.version, f"package-name:{name}"))
    return lookups


class Matcher:
    """Matches packages against one opened database. Reuse it: comparators and advisories are cached."""

    def __init__(self, db: VulnerabilityDb) -> None:
        self.db = db

    def match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        lookups = plan_lookups(packages, distro)
        by_namespace: dict[str, list[_Lookup]] = defaultdict(list)
        for lookup in lookups:
            by_namespace[lookup.namespace].append(lookup)

        hits: list[tuple[_Lookup, AffectedRow, _Evaluation]] = []
        for namespace, group in by_namespace.items():
            rows_by_name: dict[str, list[AffectedRow]] = defaultdict(list)
            for row in self.db.affected(namespace, [lookup.name for lookup in group]):
                rows_by_name[row.package_name].append(row)
            for lookup in group:
                for row in rows_by_name.get(lookup.name, ()):
                    evaluation = evaluate(lookup.version, row)
                    if evaluation is not None:
                        hits.append((lookup, row, evaluation))
        if not hits:
            return []

        records = self.db.vulnerabilities((row.feed, row.vuln_id, row.namespace) for _, row, _ in hits)
        cve_ids = sorted({cve for record in records.values() if record is not None for cve in record.cve_ids})
        nvd = self.db.nvd(cve_ids)
        kev = self.db.kev(cve_ids)
        epss = self.db.epss(cve_ids)

        # Nested parts are built once and shared: a model instance passes validation as it is.
        package_of: dict[int, MatchedPackage] = {}
        cvss_of: dict[tuple[str, str, str], tuple[MatchCvss, ...]] = {}
        candidates: dict[int, list[_Candidate]] = defaultdict(list)
        for lookup, row, evaluation in hits:
            record = records.get((row.feed, row.vuln_id, row.namespace))
            if record is None:
                continue
            package = packages[lookup.index]
            cves = record.cve_ids
            severity = _severity(row, record, [nvd[c] for c in cves if c in nvd])
            record_key = (row.feed, row.vuln_id, row.namespace)
            cvss = cvss_of.get(record_key)
            if cvss is None:
                cvss = cvss_of[record_key] = _cvss(record, [nvd[c] for c in cves if c in nvd])
            scores = [epss[c] for c in cves if c in epss]
            best_epss = max(scores) if scores else None
            matched_package = package_of.get(lookup.index)
            if matched_package is None:
                matched_package = package_of[lookup.index] = MatchedPackage(
                    name=package.name,
                    version=package.version,
                    type=package.type.value,
                    purl=package.purl,
                    location=package.locations[0].path if package.locations else None,
                )
            match = Match(
                id=record.id,
                aliases=record.aliases,
                severity=severity,
                cvss=cvss,
                fix=evaluation.fix,
                package=matched_package,
                namespace=row.namespace,
                urls=record.urls,
                description=record.summary or record.description,
                published=record.published,
                kev=any(c in kev for c in cves),
                epss=best_epss[0] if best_epss else None,
                epss_percentile=best_epss[1] if best_epss else None,
                matched_by=MatchDetail(
                    matcher=MATCHER_NAMES.get(package.type, f"{package.type.value}-matcher"),
                    namespace=row.namespace,
                    searched_by=lookup.searched_by,
                    constraint=evaluation.constraint,
                    version_format=row.version_format,
                    fallback_ordering=evaluation.fallback,
                ),
            )
            candidates[lookup.index].append(
                _Candidate(match, _rank(record, lookup), {record.id, *record.aliases})
            )

        matches = [merged for group in candidates.values() for merged in _merge_statements(group)]
        matches.sort(key=lambda m: (-m.severity.rank, m.package.name, m.package.version, m.id))
        return matches


@dataclass(frozen=True)
class _Evaluation:
    fix: MatchFix
    constraint: str
    fallback: bool


def evaluate(version: str, row: AffectedRow) -> _Evaluation | None:
    """Whether ``version`` is affected by ``row``, and how (None when it is not)."""
    return _evaluate(
        version, row.version_format, row.ranges_text, row.versions, row.fix_state, row.fix_versions
    )


# Images share packages and advisories share range documents: the same (version, ranges) question comes
# up again and again across the images a process matches.
@lru_cache(maxsize=131072)
def _evaluate(
    version: str,
    version_format: str,
    ranges_text: str,
    versions: tuple[str, ...],
    fix_state: str,
    fix_versions: tuple[str, ...],
) -> _Evaluation | None:
    comparator = get_comparator(version_format)
    for range_type, events in decode_ranges(ranges_text):
        range_comparator = comparator
        if range_type == "SEMVER" and version_format not in _SEMVER_FAMILY:
            range_comparator = get_comparator("semver")
        if in_osv_range(version, events, range_comparator):
            fixes = _closing_fixes(version, events, range_comparator)
            if fixes:
                state, closing = FixState.FIXED, fixes
            elif fix_state == FixState.FIXED.value:
                # Other intervals of the advisory were fixed; the one this version is in was not.
                state, closing = FixState.NOT_FIXED, ()
            else:
                state, closing = FixState(fix_state), ()
            return _Evaluation(
                MatchFix(state=state, versions=closing),
                _range_text(events),
                _uses_fallback(version, events, range_comparator),
            )
    if version in versions:
        return _Evaluation(
            MatchFix(state=FixState(fix_state), versions=fix_versions),
            f"= {version}",
            not comparator.is_valid(version),
        )
    return None


def _closing_fixes(version: str, events: Sequence[dict[str, str]], comparator: Comparator) -> tuple[str, ...]:
    """The lowest ``fixed`` version above ``version``: the release that closes its interval."""
    above = [
        bound
        for event in events
        for kind, bound in event.items()
        if kind == "fixed" and comparator.compare(version, bound) < 0
    ]
    if not above:
        return ()
    lowest = above[0]
    for bound in above[1:]:
        if comparator.compare(bound, lowest) < 0:
            lowest = bound
    return (lowest,)


def _range_text(events: Sequence[dict[str, str]]) -> str:
    """The range as a grype-style constraint (``>= 1.0, < 1.4``), for people reading the match."""
    parts: list[str] = []
    for event in events:
        for kind, bound in event.items():
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


def _uses_fallback(version: str, events: Sequence[dict[str, str]], comparator: Comparator) -> bool:
    if not comparator.is_valid(version):
        return True
    return any(
        bound not in ("0", "*") and not comparator.is_valid(bound)
        for event in events
        for bound in event.values()
    )


def _severity(row: AffectedRow, record: VulnerabilityRow, nvd: Sequence[NvdRow]) -> Severity:
    if row.severity:
        package_severity = Severity(row.severity)
        if package_severity is not Severity.UNKNOWN:
            return package_severity
    if record.severity is not Severity.UNKNOWN:
        return record.severity
    for entry in nvd:
        if entry.severity is not Severity.UNKNOWN:
            return entry.severity
    return Severity.UNKNOWN


def _cvss(record: VulnerabilityRow, nvd: Sequence[NvdRow]) -> tuple[MatchCvss, ...]:
    scores = list(record.cvss)
    for entry in nvd:
        scores.extend(entry.cvss)
    seen: dict[tuple[str, str, str | None], MatchCvss] = {}
    for score in scores:
        key = (score.version, score.vector, score.source)
        if key not in seen:
            seen[key] = MatchCvss(
                version=score.version, vector=score.vector, score=score.base_score, source=score.source
            )
    return tuple(seen.values())


def _rank(record: VulnerabilityRow, lookup: _Lookup) -> tuple[int, int, str]:
    """Lower is preferred when statements of one issue are merged."""
    native = 0 if record.source in _NATIVE_DISTRO_SOURCES else 1
    if record.id.startswith("GHSA-"):
        id_rank = 0
    elif record.id.startswith("CVE-"):
        id_rank = 1
    else:
        id_rank = 2
    # The source-package search is the primary evidence for OS packages.
    return (
        native,
        id_rank if lookup.searched_by.startswith(("source", "package")) else id_rank + 3,
        record.id,
    )


def _merge_statements(candidates: Iterable[_Candidate]) -> list[Match]:
    """One match per issue: candidates whose ids or aliases overlap are one issue."""
    groups: list[list[_Candidate]] = []
    names_of_group: list[set[str]] = []
    for candidate in sorted(candidates, key=lambda c: c.rank):
        joined = [i for i, names in enumerate(names_of_group) if names & candidate.names]
        if not joined:
            groups.append([candidate])
            names_of_group.append(set(candidate.names))
            continue
        first = joined[0]
        groups[first].append(candidate)
        names_of_group[first] |= candidate.names
        # The candidate may bridge groups that were separate until now.
        for other in reversed(joined[1:]):
            groups[first].extend(groups.pop(other))
            names_of_group[first] |= names_of_group.pop(other)
    merged: list[Match] = []
    for group in groups:
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
