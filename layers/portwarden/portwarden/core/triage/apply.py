"""Applying VEX statements and ignore rules to a scan's matches.

For each match, the VEX statements about its vulnerability (by id or alias, either side) whose product
names the image or the package are gathered; the most recent one (by timestamp; among equals, the one
given last) decides: ``not_affected`` and ``fixed`` suppress the match, ``affected`` and
``under_investigation`` annotate it. Every ignore rule that selects the match and has not expired
suppresses it too. A suppressed match leaves the reported list and is kept with everything that
suppressed it; ``--fail-on`` and the policy gates see only what is still reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from fnmatch import fnmatchcase

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.sbom.vulnerabilities import match_package_refs, package_key
from portwarden.core.triage.model import (
    AnnotatedMatch,
    IgnoreRule,
    SuppressedMatch,
    Suppression,
    TriageInputs,
    TriageOutcome,
    VexProduct,
    VexStatement,
)
from portwarden.core.triage.products import ImageIdentity, names_package


def apply_triage(
    analysis: ImageAnalysis,
    matches: Sequence[Match],
    inputs: TriageInputs,
    *,
    today: date,
    repo_tag: str | None = None,
) -> TriageOutcome:
    if inputs.empty:
        return TriageOutcome(matches=tuple(matches))
    context = TriageContext(analysis, inputs, today, repo_tag)
    kept: list[Match] = []
    suppressed: list[SuppressedMatch] = []
    annotated: list[AnnotatedMatch] = []
    for match in matches:
        reasons: list[Suppression] = []
        statement = context.deciding_statement(match)
        if statement is not None:
            if statement.status.suppresses:
                reasons.append(Suppression(kind="vex", reason=statement.describe(), statement=statement))
            else:
                annotated.append(AnnotatedMatch(match=match, statement=statement))
        reasons.extend(
            Suppression(kind="ignore-rule", reason=rule.describe(), rule=rule)
            for rule in context.active_rules
            if rule_selects(rule, match)
        )
        if reasons:
            suppressed.append(SuppressedMatch(match=match, suppressed_by=tuple(reasons)))
        else:
            kept.append(match)
    return TriageOutcome(
        matches=tuple(kept),
        suppressed=tuple(suppressed),
        annotated=tuple(annotated),
        warnings=tuple(
            f"{rule.source}: ignore rule {rule.index} expired on {rule.expires}: not applied"
            for rule in context.expired_rules
        ),
    )


class TriageContext:
    """What deciding needs, worked out once per scan: statements indexed by vulnerability name, the
    image's names, the packages' bom-refs, the rules in force."""

    def __init__(self, analysis: ImageAnalysis, inputs: TriageInputs, today: date, repo_tag: str | None):
        self.image = ImageIdentity.of(analysis, repo_tag)
        self.by_name: dict[str, list[tuple[int, VexStatement]]] = {}
        for order, statement in enumerate(inputs.statements):
            for name in dict.fromkeys(statement.names):
                self.by_name.setdefault(name, []).append((order, statement))
        self.active_rules = [rule for rule in inputs.rules if not rule.expired(today)]
        self.expired_rules = [rule for rule in inputs.rules if rule.expired(today)]
        # bom-refs are only worth computing when a statement may use one.
        uses_refs = any(
            not identifier.startswith("pkg:")
            for statement in inputs.statements
            for product in statement.products
            for identifier in (*product.ids, *product.subcomponents)
        )
        self.refs = match_package_refs(analysis) if uses_refs else {}
        self.package_purls = tuple(package.purl for package in analysis.packages if package.purl)

    def statements_about(self, match: Match) -> list[tuple[int, VexStatement, bool]]:
        """Every statement about the match's vulnerability: (order given, statement, whether one of its
        products names this image or package)."""
        candidates: dict[int, VexStatement] = {}
        for name in (match.id, *match.aliases):
            for order, statement in self.by_name.get(name, ()):
                candidates[order] = statement
        if not candidates:
            return []
        package = match.package
        bom_ref = self.refs.get(
            package_key(package.name, package.version, package.type, package.purl, package.location)
        )
        return [
            (
                order,
                statement,
                any(self._product_applies(product, package.purl, bom_ref) for product in statement.products),
            )
            for order, statement in sorted(candidates.items())
        ]

    def deciding_statement(self, match: Match) -> VexStatement | None:
        applicable = [
            (order, statement) for order, statement, applies in self.statements_about(match) if applies
        ]
        if not applicable:
            return None
        # The latest statement wins; statements without a time count as oldest; ties go to the later one.
        _, chosen = max(applicable, key=_recency)
        return chosen

    def _product_applies(self, product: VexProduct, purl: str | None, bom_ref: str | None) -> bool:
        if product.subcomponents:
            # The statement is about parts of the product: the product must be this image (or one of its
            # packages) and the matched package one of the parts.
            product_here = any(
                self.image.named_by(identifier)
                or any(names_package(identifier, other, None) for other in self.package_purls)
                for identifier in product.ids
            )
            return product_here and any(names_package(sub, purl, bom_ref) for sub in product.subcomponents)
        return any(
            self.image.named_by(identifier) or names_package(identifier, purl, bom_ref)
            for identifier in product.ids
        )


def _recency(item: tuple[int, VexStatement]) -> tuple[bool, float, int]:
    order, statement = item
    stamp = statement.timestamp
    return (stamp is not None, stamp.timestamp() if stamp is not None else 0.0, order)


def rule_selects(rule: IgnoreRule, match: Match) -> bool:
    """Whether ``rule`` selects ``match`` (every criterion it states must hold; expiry is not checked)."""
    if rule.vulnerability is not None and rule.vulnerability not in (match.id, *match.aliases):
        return False
    if rule.fix_state is not None and match.fix.state is not rule.fix_state:
        return False
    if rule.namespace is not None and rule.namespace != match.namespace:
        return False
    criteria = rule.package
    if criteria is None:
        return True
    package = match.package
    if criteria.name is not None and criteria.name != package.name:
        return False
    if criteria.version is not None and criteria.version != package.version:
        return False
    if criteria.type is not None and criteria.type != package.type:
        return False
    if criteria.location is not None:
        return package.location is not None and fnmatchcase(package.location, criteria.location)
    return True
