"""Triage value objects: VEX statements, ignore rules, and what they did to a scan's matches.

A VEX statement (OpenVEX 0.2 or CycloneDX VEX, normalized to OpenVEX's vocabulary) says whether a
product is affected by a vulnerability. ``not_affected`` and ``fixed`` suppress the matches they apply to;
``affected`` and ``under_investigation`` leave them reported, annotated. An ignore rule (Grype's shape)
suppresses the matches it selects, always with a reason, until it expires. Suppressed matches are kept,
each with every statement or rule that suppressed it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import FixState


class VexStatus(StrEnum):
    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"

    @property
    def suppresses(self) -> bool:
        return self in (VexStatus.NOT_AFFECTED, VexStatus.FIXED)


class VexJustification(StrEnum):
    """OpenVEX's justifications for ``not_affected``."""

    COMPONENT_NOT_PRESENT = "component_not_present"
    VULNERABLE_CODE_NOT_PRESENT = "vulnerable_code_not_present"
    VULNERABLE_CODE_NOT_IN_EXECUTE_PATH = "vulnerable_code_not_in_execute_path"
    VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY = "vulnerable_code_cannot_be_controlled_by_adversary"
    INLINE_MITIGATIONS_ALREADY_EXIST = "inline_mitigations_already_exist"


class VexProduct(ValueObject):
    """A product a statement is about: its identifiers (purls, image references or digests, CPEs,
    CycloneDX bom-refs) and, when the statement is about parts of it, the identifiers of those parts."""

    ids: tuple[str, ...]
    subcomponents: tuple[str, ...] = ()


class VexStatement(ValueObject):
    vulnerability: str
    aliases: tuple[str, ...] = ()
    products: tuple[VexProduct, ...]
    status: VexStatus
    justification: str | None = None
    impact_statement: str | None = None
    action_statement: str | None = None
    timestamp: datetime | None = None
    # Where it was read: the document (file) and the statement's position in it (from 0).
    document: str
    index: int
    format: Literal["openvex", "cyclonedx"]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.vulnerability, *self.aliases)

    def describe(self) -> str:
        """One line: ``not_affected (vulnerable_code_not_present) by vex.json statement 2``."""
        detail = self.justification or self.impact_statement
        status = f"{self.status.value} ({detail})" if detail else self.status.value
        return f"VEX {status}: {self.document} statement {self.index}"


class IgnorePackage(ValueObject):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    version: str | None = None
    type: str | None = None
    # A glob (``/usr/lib/**``, ``*/node_modules/*``) over the package's location paths.
    location: str | None = None

    @model_validator(mode="after")
    def _names_something(self) -> IgnorePackage:
        if not any((self.name, self.version, self.type, self.location)):
            raise ValueError("package needs at least one of name, version, type, location")
        return self


class IgnoreRule(ValueObject):
    """One ignore rule of ``.portwarden.yaml`` (keys spelled as Grype spells them: ``fix-state``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    vulnerability: str | None = None
    reason: str
    expires: date | None = None
    package: IgnorePackage | None = None
    fix_state: FixState | None = Field(default=None, alias="fix-state")
    namespace: str | None = None
    # Where it was read and its position in the ``ignore`` list (from 0).
    source: str = ""
    index: int = 0

    @field_validator("reason")
    @classmethod
    def _reason_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an ignore rule needs a reason")
        return value.strip()

    @model_validator(mode="after")
    def _selects_something(self) -> IgnoreRule:
        if not any((self.vulnerability, self.package, self.fix_state, self.namespace)):
            raise ValueError(
                "an ignore rule must name a vulnerability, a package, a fix-state or a namespace"
            )
        return self

    def expired(self, today: date) -> bool:
        # A rule expiring on a day still holds during that day.
        return self.expires is not None and self.expires < today

    def describe(self) -> str:
        return f"ignore rule {self.index} of {self.source}: {self.reason}"


class Suppression(ValueObject):
    """Why a match was suppressed: the statement or rule, and a line for people."""

    kind: Literal["vex", "ignore-rule"]
    reason: str
    statement: VexStatement | None = None
    rule: IgnoreRule | None = None


class SuppressedMatch(ValueObject):
    match: Match
    suppressed_by: tuple[Suppression, ...]


class AnnotatedMatch(ValueObject):
    """A reported match a VEX statement speaks about without suppressing it (affected, or under
    investigation)."""

    match: Match
    statement: VexStatement


class TriageInputs(ValueObject):
    """What a scan is triaged with: VEX statements (in the order given) and ignore rules."""

    statements: tuple[VexStatement, ...] = ()
    rules: tuple[IgnoreRule, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.statements and not self.rules


class TriageOutcome(ValueObject):
    matches: tuple[Match, ...] = ()
    suppressed: tuple[SuppressedMatch, ...] = ()
    annotated: tuple[AnnotatedMatch, ...] = ()
    # Rules that no longer apply (expired), said once per scan.
    warnings: tuple[str, ...] = ()
