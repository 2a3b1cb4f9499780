"""Use case: explain why an image has (or has not) a vulnerability, from its evidence.

For each match of the vulnerability (by id or alias, reported or suppressed): the package and the files
and layers it was found in, the feed record with its source, sync and modification dates, the namespace
and the version rule that matched (the range and the comparator), why the fix state is what it is, where
the severity comes from, KEV and EPSS, and every VEX statement or ignore rule about it with what it did
(or why it did not apply). With a policy bundle, each result row about the vulnerability comes with its
mapping, the rule and its parameters, and the allowlist item that applied.

The result is a pydantic model: the command line prints it, the API serves it as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.explanation import (
    EpssExplanation,
    Explanation,
    FeedRecord,
    FixExplanation,
    FoundIn,
    KevExplanation,
    MatchExplanation,
    PackageEvidence,
    PolicyRowExplanation,
    SeverityExplanation,
    TriageEffect,
    VersionRule,
)
from portwarden.core.model.match import Match
from portwarden.core.model.package import Package
from portwarden.core.model.policy import (
    PolicyBundle,
    PolicyEvaluation,
    PolicyResultRow,
)
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.services.evaluate import evaluate, evaluation_input
from portwarden.core.services.match import match_image
from portwarden.core.triage.apply import TriageContext, apply_triage, rule_selects
from portwarden.core.triage.model import IgnoreRule, TriageInputs
from portwarden.core.vulns.db import AffectedRow, VulnerabilityDb, decode_ranges
from portwarden.core.vulns.matcher import evaluate as evaluate_row
from portwarden.core.vulns.namespaces import lookup_name
from portwarden.core.vulns.versions import get_comparator
from portwarden.core.vulns.versions.range_plans import range_constraint


def explain_vulnerability(
    analysis: ImageAnalysis,
    db: VulnerabilityDb,
    vulnerability_id: str,
    *,
    triage: TriageInputs | None = None,
    bundle: PolicyBundle | None = None,
    repo_tag: str | None = None,
    now: datetime | None = None,
    matches: Sequence[Match] | None = None,
) -> Explanation:
    """The explanation of ``vulnerability_id`` (an id or an alias) for the analyzed image.

    ``matches`` are the image's stored matches (what its reports show); without them the image is
    matched against ``db`` now.
    """
    moment = now or datetime.now(UTC)
    wanted = vulnerability_id.strip()
    repo_tag = repo_tag or analysis.source.reference
    inputs = triage or TriageInputs()
    all_matches = list(matches) if matches is not None else match_image(analysis, db)
    outcome = apply_triage(analysis, all_matches, inputs, today=moment.date(), repo_tag=repo_tag)
    context = TriageContext(analysis, inputs, moment.date(), repo_tag)
    suppressed_ids = {id(item.match) for item in outcome.suppressed}
    concerned = [match for match in all_matches if wanted in (match.id, *match.aliases)]
    metadata = db.metadata()
    explanations = tuple(
        _explain_match(match, analysis, db, context, inputs.rules, moment.date(), id(match) in suppressed_ids)
        for match in concerned
    )
    notes: list[str] = []
    known = bool(db.records(wanted)) or any(concerned)
    if not concerned:
        notes.append(
            f"no package of this image matches {wanted}"
            + (" (the database has records of it)" if known else " (the database has no record of it)")
        )
    rows: tuple[PolicyRowExplanation, ...] = ()
    if bundle is not None:
        evaluation = evaluate(
            bundle,
            evaluation_input(
                analysis,
                outcome.matches,
                now=moment,
                repo_tag=repo_tag,
                db_built_at=metadata.built_at,
            ),
        )
        ids = {wanted, *(match.id for match in concerned)}
        rows = explain_policy_rows(
            evaluation, bundle, [row for row in evaluation.results if _row_concerns(row, ids)]
        )
        if not rows:
            notes.append(f"no result row of policy bundle {bundle.id} concerns {wanted}")
    return Explanation(
        vulnerability_id=wanted,
        image_digest=analysis.source.manifest_digest,
        image=analysis.source.reference or f"{analysis.source.type}:{analysis.source.location}",
        database_built_at=metadata.built_at,
        known_to_database=known,
        matches=explanations,
        policy_rows=rows,
        notes=tuple(notes),
    )


def _row_concerns(row: PolicyResultRow, ids: set[str]) -> bool:
    # Vulnerability rows have trigger ids "<vulnerability id>+<package>".
    head = row.trigger_id.split("+", 1)[0]
    return head in ids


def explain_policy_rows(
    evaluation: PolicyEvaluation, bundle: PolicyBundle, rows: Sequence[PolicyResultRow]
) -> tuple[PolicyRowExplanation, ...]:
    """Each row with the mapping that selected the image, the rule that fired (with its parameters) and
    the allowlist item that allowlisted it, when one did."""
    selected = evaluation.matched_mapping_rule
    mapping = None
    if selected is not None:
        mapping = next(
            (m for m in bundle.mappings if (m.id, m.name) == (selected.id, selected.name)),
            None,
        )
    explained = []
    for row in rows:
        policy = bundle.policy(row.policy_id)
        rule = next((r for r in policy.rules if r.id == row.rule_id), None) if policy else None
        item = None
        if row.allowlist_id:
            allowlist = bundle.allowlist(row.allowlist_id)
            if allowlist is not None:
                item = next((i for i in allowlist.items if i.id == row.allowlist_item_id), None)
        explained.append(
            PolicyRowExplanation(
                row=row, mapping=mapping, rule=rule, allowlist_item=item, counted=not row.allowlisted
            )
        )
    return tuple(explained)


# ---- one match ---------------------------------------------------------------------------------------


def _find_package(analysis: ImageAnalysis, match: Match) -> Package | None:
    wanted = match.package
    for package in analysis.packages:
        location = package.locations[0].path if package.locations else None
        if (package.name, package.version, package.type.value, package.purl, location) == (
            wanted.name,
            wanted.version,
            wanted.type,
            wanted.purl,
            wanted.location,
        ):
            return package
    return None


def _layer_facts(analysis: ImageAnalysis) -> dict[str, tuple[int, str | None]]:
    """Layer digest (and diff id) -> (position, the history step that created it)."""
    steps = [
        str(entry.get("created_by") or "") or None
        for entry in analysis.image.history
        if not entry.get("empty_layer")
    ]
    facts: dict[str, tuple[int, str | None]] = {}
    for index, layer in enumerate(analysis.image.layers):
        created_by = steps[index] if index < len(steps) else None
        for key in ("digest", "diff_id"):
            value = layer.get(key)
            if isinstance(value, str):
                facts[value] = (index, created_by)
    return facts


def _package_evidence(analysis: ImageAnalysis, match: Match, package: Package | None) -> PackageEvidence:
    matched = match.package
    if package is None:
        found = (FoundIn(path=matched.location),) if matched.location else ()
        return PackageEvidence(
            name=matched.name, version=matched.version, type=matched.type, purl=matched.purl, found_in=found
        )
    layers = _layer_facts(analysis)
    found_in = []
    for location in package.locations:
        index, created_by = layers.get(location.layer_digest or "", (None, None))
        found_in.append(
            FoundIn(
                path=location.path,
                layer_digest=location.layer_digest,
                layer_index=index,
                layer_created_by=created_by,
            )
        )
    source_name = package.metadata.get("source_name")
    source_version = package.metadata.get("source_version")
    return PackageEvidence(
        name=package.name,
        version=package.version,
        type=package.type.value,
        purl=package.purl,
        found_by=package.found_by,
        source_package=str(source_name) if source_name else None,
        source_version=str(source_version) if source_version else None,
        found_in=tuple(found_in),
    )


def _compared_version(match: Match, package: Package | None) -> str:
    if match.matched_by.searched_by.startswith("source-package:") and package is not None:
        return str(package.metadata.get("source_version") or package.version)
    return match.package.version


def _matching_row(db: VulnerabilityDb, match: Match, version: str) -> tuple[AffectedRow | None, str]:
    """The affected row that made the match (the one whose evaluation gives its constraint)."""
    detail = match.matched_by
    searched = detail.searched_by.split(":", 1)[1] if ":" in detail.searched_by else detail.searched_by
    name = lookup_name(detail.namespace, searched)
    rows = db.affected(detail.namespace, [name])
    candidates = [row for row in rows if row.vuln_id == match.id]
    for row in candidates:
        evaluation = evaluate_row(version, row)
        if evaluation is not None and evaluation.constraint == detail.constraint:
            return row, name
    return (candidates[0] if candidates else None), name


def _explain_match(
    match: Match,
    analysis: ImageAnalysis,
    db: VulnerabilityDb,
    context: TriageContext,
    rules: Sequence[IgnoreRule],
    today: date,
    suppressed: bool,
) -> MatchExplanation:
    package = _find_package(analysis, match)
    version = _compared_version(match, package)
    row, name = _matching_row(db, match, version)
    record = db.vulnerability(row.feed, row.vuln_id, row.namespace) if row is not None else None
    return MatchExplanation(
        vulnerability_id=match.id,
        aliases=match.aliases,
        suppressed=suppressed,
        package=_package_evidence(analysis, match, package),
        record=_feed_record(db, row) if row is not None else None,
        version_rule=_version_rule(match, row, name, version),
        fix=_fix_explanation(match, row, version, record.source if record else "the feed"),
        severity=_severity_explanation(match, row, record),
        kev=_kev(db, match),
        epss=EpssExplanation(score=match.epss, percentile=match.epss_percentile),
        triage=_triage_effects(match, context, rules, today),
    )


def _feed_record(db: VulnerabilityDb, row: AffectedRow) -> FeedRecord | None:
    record = db.vulnerability(row.feed, row.vuln_id, row.namespace)
    if record is None:
        return None
    extras = db.record_extras(row.feed, row.vuln_id, row.namespace)
    state = next((s for s in db.metadata().sources if s.key == row.feed), None)
    modified = extras.get("modified")
    return FeedRecord(
        id=record.id,
        namespace=record.namespace,
        source=record.source,
        feed=row.feed,
        feed_url=state.url if state else None,
        feed_synced_at=state.last_success if state else None,
        published=record.published,
        modified=datetime.fromisoformat(modified) if isinstance(modified, str) else None,
        urls=record.urls,
    )


def _version_rule(match: Match, row: AffectedRow | None, name: str, version: str) -> VersionRule:
    detail = match.matched_by
    ranges: list[str] = []
    explicit = 0
    if row is not None:
        for range_type, events in decode_ranges(row.ranges_text):
            pairs = [(kind, bound) for event in events for kind, bound in event.items()]
            ranges.append(f"{range_type}: {range_constraint(pairs)}")
        explicit = len(row.versions)
    try:
        comparator = get_comparator(detail.version_format).name
    except Exception:  # an unknown format still gets explained, by name
        comparator = detail.version_format
    return VersionRule(
        namespace=detail.namespace,
        searched_by=detail.searched_by,
        package_name=name,
        installed_version=version,
        version_format=detail.version_format,
        comparator=comparator,
        constraint=detail.constraint,
        ranges=tuple(ranges),
        explicit_versions=explicit,
        fallback_ordering=detail.fallback_ordering,
    )


def _fix_explanation(match: Match, row: AffectedRow | None, version: str, source: str) -> FixExplanation:
    fix = match.fix
    note = f" ({source} says: {row.note})" if row is not None and row.note else ""
    constraint = match.matched_by.constraint
    if fix.state is FixState.FIXED:
        if constraint.startswith("= "):
            reason = (
                f"{source} lists {version} as affected and names the fix {', '.join(fix.versions)}; "
                "upgrading to it resolves the match"
            )
        else:
            reason = (
                f"{version} falls in the range `{constraint}`, which closes with the fixed version "
                f"{', '.join(fix.versions)}: upgrading to it resolves the match"
            )
    elif fix.state is FixState.NOT_FIXED:
        if row is not None and row.fix_state == FixState.FIXED.value:
            reason = (
                f"other ranges of the advisory have fixes, but the range {version} falls in "
                f"(`{constraint}`) has no fixed version"
            )
        else:
            reason = f"{source} states no fix for this package in {match.namespace} yet{note}"
    elif fix.state is FixState.WONT_FIX:
        reason = f"{source} marks this issue as one that will not be fixed in {match.namespace}{note}"
    else:
        reason = f"{source} does not say whether a fix exists{note}"
    if fix.state is not FixState.FIXED and note and note not in reason:
        reason += note
    return FixExplanation(state=fix.state, versions=fix.versions, reason=reason)


def _severity_explanation(match: Match, row: AffectedRow | None, record: Any) -> SeverityExplanation:
    if row is not None and row.severity and row.severity != Severity.UNKNOWN.value:
        reason = f"the {record.source if record else 'feed'} grade of this package in {match.namespace}"
    elif record is not None and record.severity is not Severity.UNKNOWN:
        reason = f"the advisory's severity from {record.severity_source or record.source}"
    elif match.severity is not Severity.UNKNOWN:
        reason = "NVD's severity for the advisory's CVE (the feed gives none)"
    else:
        reason = "no source grades it"
    return SeverityExplanation(severity=match.severity, reason=reason)


def _kev(db: VulnerabilityDb, match: Match) -> KevExplanation:
    cves = [name for name in (match.id, *match.aliases) if name.startswith("CVE-")]
    entries = db.kev_entries(cves) if cves else {}
    return KevExplanation(listed=match.kev or bool(entries), entries=tuple(entries.values()))


def _triage_effects(
    match: Match,
    context: TriageContext,
    rules: Sequence[IgnoreRule],
    today: date,
) -> tuple[TriageEffect, ...]:
    effects: list[TriageEffect] = []
    deciding = context.deciding_statement(match)
    for _, statement, applies in context.statements_about(match):
        if not applies:
            effect: Any = "does-not-apply"
            reason = f"{statement.describe()}: none of its products names this image or package"
        elif statement is not deciding:
            effect, reason = "overridden", f"{statement.describe()}: a more recent statement decides"
        elif statement.status.suppresses:
            effect, reason = "suppresses", statement.describe()
        else:
            effect, reason = "annotates", f"{statement.describe()}: still reported"
        effects.append(TriageEffect(kind="vex", effect=effect, reason=reason, statement=statement))
    for rule in rules:
        if not rule_selects(rule, match):
            continue
        if rule.expired(today):
            effects.append(
                TriageEffect(
                    kind="ignore-rule",
                    effect="expired",
                    reason=f"{rule.describe()} (expired on {rule.expires})",
                    rule=rule,
                )
            )
        else:
            effects.append(
                TriageEffect(kind="ignore-rule", effect="suppresses", reason=rule.describe(), rule=rule)
            )
    return tuple(effects)
