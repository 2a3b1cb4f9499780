"""What an explanation of a vulnerability holds (see ``portwarden.core.services.explain``).

Apart from the service so that the API can declare its response model without loading the matcher
and the policy engine the service uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from portwarden.core.model.base import ValueObject
from portwarden.core.model.policy import AllowlistItem, MappingRule, PolicyResultRow, PolicyRule
from portwarden.core.model.vulnerability import FixState, KevEntry, Severity
from portwarden.core.triage.model import IgnoreRule, VexStatement


class FoundIn(ValueObject):
    """A file the package was found in, and the layer that put it there."""

    path: str
    layer_digest: str | None = None
    layer_index: int | None = None  # position in the image's layers, from 0
    layer_created_by: str | None = None


class PackageEvidence(ValueObject):
    name: str
    version: str
    type: str
    purl: str | None = None
    found_by: str | None = None
    source_package: str | None = None
    source_version: str | None = None
    found_in: tuple[FoundIn, ...] = ()


class FeedRecord(ValueObject):
    id: str
    namespace: str
    source: str
    feed: str
    feed_url: str | None = None
    feed_synced_at: datetime | None = None
    published: datetime | None = None
    modified: datetime | None = None
    urls: tuple[str, ...] = ()


class VersionRule(ValueObject):
    namespace: str
    searched_by: str
    package_name: str
    installed_version: str
    version_format: str
    comparator: str
    constraint: str
    ranges: tuple[str, ...] = ()
    explicit_versions: int = 0
    fallback_ordering: bool = False


class FixExplanation(ValueObject):
    state: FixState
    versions: tuple[str, ...] = ()
    reason: str


class SeverityExplanation(ValueObject):
    severity: Severity
    reason: str


class KevExplanation(ValueObject):
    listed: bool
    entries: tuple[KevEntry, ...] = ()


class EpssExplanation(ValueObject):
    score: float | None = None
    percentile: float | None = None


class TriageEffect(ValueObject):
    kind: Literal["vex", "ignore-rule"]
    effect: Literal["suppresses", "annotates", "overridden", "does-not-apply", "expired"]
    reason: str
    statement: VexStatement | None = None
    rule: IgnoreRule | None = None


class MatchExplanation(ValueObject):
    vulnerability_id: str
    aliases: tuple[str, ...] = ()
    suppressed: bool = False
    package: PackageEvidence
    record: FeedRecord | None = None
    version_rule: VersionRule
    fix: FixExplanation
    severity: SeverityExplanation
    kev: KevExplanation
    epss: EpssExplanation
    triage: tuple[TriageEffect, ...] = ()


class PolicyRowExplanation(ValueObject):
    row: PolicyResultRow
    mapping: MappingRule | None = None
    rule: PolicyRule | None = None
    allowlist_item: AllowlistItem | None = None
    counted: bool


class Explanation(ValueObject):
    vulnerability_id: str
    image_digest: str
    image: str
    database_built_at: datetime | None = None
    known_to_database: bool
    matches: tuple[MatchExplanation, ...] = ()
    policy_rows: tuple[PolicyRowExplanation, ...] = ()
    notes: tuple[str, ...] = ()
