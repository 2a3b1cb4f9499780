"""Policy bundles (Anchore's schema ``"1_0"``), what a policy evaluation reads, and what it produces.

Bundle documents keep Anchore's field names (``whitelists``, ``whitelisted_images``,
``blacklisted_images``, ``whitelist_ids``) so that existing bundles load unchanged; the newer spellings
(``allowlists``, ``allowlisted_images``, ``denylisted_images``, ``allowlist_ids``) are accepted on input
and normalized to the original ones. Structural checks live here; the checks that need the gate
registry (known gates, triggers and parameters) live in ``portwarden.core.policy.bundle``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_serializer, field_validator, model_validator

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match

SCHEMA_VERSION = "1_0"


class GateAction(StrEnum):
    """A rule's action, and a bundle's final action. Bundles spell it STOP/WARN/GO (any case)."""

    STOP = "stop"
    WARN = "warn"
    GO = "go"

    @property
    def severity(self) -> int:
        """Precedence when combining decisions: the highest wins (STOP > WARN > GO)."""
        return _ACTION_SEVERITY[self]


_ACTION_SEVERITY = {GateAction.GO: 0, GateAction.WARN: 1, GateAction.STOP: 2}


class FinalActionReason(StrEnum):
    POLICY_EVALUATION = "policy_evaluation"
    WHITELISTED = "whitelisted"
    BLACKLISTED = "blacklisted"


class EvaluationStatus(StrEnum):
    """Anchore's user-facing check status: GO and WARN pass, STOP fails."""

    PASS = "pass"  # noqa: S105 - a status word, not a secret
    FAIL = "fail"


def _rename_aliases(data: Any, aliases: dict[str, str]) -> Any:
    """Accept the allowlist/denylist spellings by renaming them to Anchore's, refusing both at once."""
    if not isinstance(data, dict):
        return data
    renamed = dict(data)
    for alias, canonical in aliases.items():
        if alias in renamed:
            if canonical in renamed:
                raise ValueError(f"give either {canonical!r} or {alias!r}, not both")
            renamed[canonical] = renamed.pop(alias)
    return renamed


class RuleParam(ValueObject):
    """A trigger parameter as the bundle states it: Anchore keeps every value as a string."""

    name: str
    value: str

    @field_validator("name")
    @classmethod
    def _lower_name(cls, name: str) -> str:
        return name.strip().lower()

    @field_validator("value", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Hand-written bundles often say 30 or true where Anchore's own exports say "30" or "true".
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return value


class PolicyRule(ValueObject):
    id: str | None = None
    gate: str
    trigger: str
    action: GateAction
    params: tuple[RuleParam, ...] = ()

    @field_validator("action", mode="before")
    @classmethod
    def _action_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_serializer("action")
    def _action_as_anchore(self, action: GateAction) -> str:
        # Bundle documents keep Anchore's spelling, so an exported bundle loads in Anchore too.
        return action.value.upper()

    def param_values(self) -> dict[str, str]:
        return {param.name: param.value for param in self.params}


class Policy(ValueObject):
    id: str
    version: str = SCHEMA_VERSION
    name: str | None = None
    comment: str | None = None
    rules: tuple[PolicyRule, ...] = ()


class AllowlistItem(ValueObject):
    id: str | None = None
    gate: str
    trigger_id: str
    expires_on: datetime | None = None

    @field_validator("expires_on")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # An expiry without an offset is read as UTC, the way Anchore stores it.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Allowlist(ValueObject):
    id: str
    version: str = SCHEMA_VERSION
    name: str | None = None
    comment: str | None = None
    items: tuple[AllowlistItem, ...] = ()


class ImageSelectorType(StrEnum):
    TAG = "tag"
    DIGEST = "digest"
    ID = "id"


class ImageSelector(ValueObject):
    type: ImageSelectorType
    value: str


class ImageSelectionRule(ValueObject):
    """Selects images by registry, repository and tag/digest/id (wildcards allowed)."""

    id: str | None = None
    name: str | None = None
    registry: str
    repository: str
    image: ImageSelector


class MappingRule(ImageSelectionRule):
    """Which policies and allowlists apply to the images a selector picks (first match wins)."""

    comment: str | None = None
    policy_ids: tuple[str, ...] = ()
    whitelist_ids: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _legacy_fields(cls, data: Any) -> Any:
        data = _rename_aliases(data, {"allowlist_ids": "whitelist_ids"})
        if isinstance(data, dict) and "policy_id" in data:
            # Anchore's first mapping format named one policy; both forms at once is ambiguous.
            if data.get("policy_ids"):
                raise ValueError("give either 'policy_id' or 'policy_ids', not both")
            data = dict(data)
            single = data.pop("policy_id")
            data["policy_ids"] = [single] if single else []
        return data


class PolicyBundle(ValueObject):
    id: str
    version: str = SCHEMA_VERSION
    name: str | None = None
    comment: str | None = None
    policies: tuple[Policy, ...] = ()
    whitelists: tuple[Allowlist, ...] = ()
    mappings: tuple[MappingRule, ...] = ()
    whitelisted_images: tuple[ImageSelectionRule, ...] = ()
    blacklisted_images: tuple[ImageSelectionRule, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _allowlist_spellings(cls, data: Any) -> Any:
        return _rename_aliases(
            data,
            {
                "allowlists": "whitelists",
                "allowlisted_images": "whitelisted_images",
                "denylisted_images": "blacklisted_images",
            },
        )

    def policy(self, policy_id: str) -> Policy | None:
        return next((p for p in self.policies if p.id == policy_id), None)

    def allowlist(self, allowlist_id: str) -> Allowlist | None:
        return next((w for w in self.whitelists if w.id == allowlist_id), None)

    def document(self) -> dict[str, Any]:
        """The bundle as JSON, in Anchore's spelling (what stores keep and ``policy get`` prints)."""
        return self.model_dump(mode="json", exclude_none=True)


# ---- what an evaluation reads ----------------------------------------------------------------------------


class EvaluationInput(ValueObject):
    """Everything a gate may look at. Gates are pure functions of this and their parameters.

    ``now`` is injected (never read from the system clock inside a gate) so evaluations are
    reproducible. ``dockerfile`` is a Dockerfile the user supplied; without one, gates use the one
    reconstructed from the image history (Anchore's "Guessed" mode). ``db_built_at`` and
    ``vulnerability_data_available`` describe the vulnerability database the matches came from.
    ``image_digest`` and ``image_id`` default to the analysis' manifest and config digests.
    """

    analysis: ImageAnalysis
    matches: tuple[Match, ...] = ()
    repo_tag: str | None = None
    image_digest: str = ""
    image_id: str = ""
    now: datetime
    dockerfile: str | None = None
    db_built_at: datetime | None = None
    vulnerability_data_available: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_identity(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        analysis = data.get("analysis")
        if isinstance(analysis, ImageAnalysis):
            data = dict(data)
            if not data.get("image_digest"):
                data["image_digest"] = analysis.source.manifest_digest
            if not data.get("image_id"):
                data["image_id"] = analysis.source.config_digest
        return data

    @field_validator("now", "db_built_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# ---- what an evaluation produces -------------------------------------------------------------------------


class PolicyResultRow(ValueObject):
    """One trigger firing, as a row of Anchore's result table (plus the rule and allowlist it involved)."""

    image_id: str
    repo_tag: str | None
    trigger_id: str
    gate: str
    trigger: str
    check_output: str
    gate_action: GateAction
    allowlisted: bool = False
    policy_id: str
    rule_id: str | None = None
    allowlist_id: str | None = None
    allowlist_item_id: str | None = None


class EvaluationProblem(ValueObject):
    """A rule that could not run, or a bundle-level fault: reported, and counted as a WARN (or STOP)."""

    message: str
    policy_id: str | None = None
    rule_id: str | None = None
    gate: str | None = None
    trigger: str | None = None


class SelectedRule(ValueObject):
    """The mapping or image-selection rule that applied, for the record."""

    id: str | None = None
    name: str | None = None


class PolicyEvaluation(ValueObject):
    bundle_id: str
    bundle_name: str | None = None
    image_digest: str
    image_id: str
    repo_tag: str | None = None
    evaluated_at: datetime
    final_action: GateAction
    final_action_reason: FinalActionReason
    status: EvaluationStatus
    policy_final_action: GateAction
    matched_mapping_rule: SelectedRule | None = None
    matched_whitelisted_images_rule: SelectedRule | None = None
    matched_blacklisted_images_rule: SelectedRule | None = None
    policy_ids: tuple[str, ...] = ()
    whitelist_ids: tuple[str, ...] = ()
    results: tuple[PolicyResultRow, ...] = ()
    evaluation_problems: tuple[EvaluationProblem, ...] = Field(default=())

    @property
    def stopped(self) -> bool:
        return self.final_action == GateAction.STOP

    def report(self) -> dict[str, Any]:
        """The ``policy`` section of ``portwarden scan -o json``: {bundle_id, final_action, status,
        reason, results, ...}."""
        return {
            "bundle_id": self.bundle_id,
            "final_action": self.final_action.value,
            "status": self.status.value,
            "reason": self.final_action_reason.value,
            "matched_mapping_rule": _selected(self.matched_mapping_rule),
            "matched_whitelisted_images_rule": _selected(self.matched_whitelisted_images_rule),
            "matched_blacklisted_images_rule": _selected(self.matched_blacklisted_images_rule),
            "evaluation_problems": [p.model_dump(mode="json") for p in self.evaluation_problems],
            "results": [row.model_dump(mode="json") for row in self.results],
        }


def _selected(rule: SelectedRule | None) -> dict[str, Any] | None:
    return rule.model_dump(mode="json") if rule is not None else None
