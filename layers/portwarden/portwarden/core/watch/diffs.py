"""What changed between two looks at one image: its vulnerabilities, its policy result, its status.

``diff_vulnerabilities`` is Anchore's ``diff_vulnerability_result``: a finding's identity is (vulnerability
id, feed group, package name, package version, package path); ``added`` and ``removed`` are identities
present on one side only, ``updated`` are identities on both sides whose summary (severity, fix, URL)
changed. Entries use Anchore's field names, so consumers of Anchore's notifications read them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field

from portwarden.core.ecosystems import ecosystem
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import Severity

_SEVERITY_BY_NAME: Mapping[str, Severity] = {severity.value: severity for severity in Severity}


class VulnerabilityEntry(ValueObject):
    """One finding in a ``vuln_update`` notification, in Anchore's field names."""

    CVE_ID: str
    Severity: str
    Vulnerable_Package: str
    Fix_Available: str
    URL: str
    Package_Name: str
    Package_Version: str
    Package_Type: str
    Package_Path: str
    Feed: str
    Feed_Group: str

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        return (self.CVE_ID, self.Feed_Group, self.Package_Name, self.Package_Version, self.Package_Path)

    @property
    def summary(self) -> tuple[str, str, str]:
        return (self.Severity, self.Fix_Available, self.URL)


class VulnerabilityDiff(ValueObject):
    """Anchore's ``diff_vulnerability_result``."""

    added: tuple[VulnerabilityEntry, ...] = ()
    removed: tuple[VulnerabilityEntry, ...] = ()
    updated: tuple[VulnerabilityEntry, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated)

    @property
    def severity_max(self) -> str | None:
        """The highest severity among added and updated findings (what a subscriber filters on)."""
        ranked = [
            _SEVERITY_BY_NAME.get(entry.Severity, Severity.UNKNOWN) for entry in (*self.added, *self.updated)
        ]
        return max(ranked, key=lambda severity: severity.rank).value if ranked else None

    def document(self) -> dict[str, Any]:
        return {
            "added": [entry.model_dump() for entry in self.added],
            "removed": [entry.model_dump() for entry in self.removed],
            "updated": [entry.model_dump() for entry in self.updated],
        }


def vulnerability_entry(match: Match) -> VulnerabilityEntry:
    package = match.package
    found = ecosystem(package.type)
    is_os = found is not None and found.os_package
    return VulnerabilityEntry(
        CVE_ID=match.id,
        Severity=match.severity.value,
        Vulnerable_Package=f"{package.name}-{package.version}",
        Fix_Available=", ".join(match.fix.versions) if match.fix.versions else "None",
        URL=match.urls[0] if match.urls else "None",
        Package_Name=package.name,
        Package_Version=package.version,
        Package_Type=found.anchore_type if found is not None else package.type,
        # Anchore's path for OS packages is the package database; language packages carry their own.
        Package_Path="pkgdb" if is_os else (package.location or "None"),
        Feed="vulnerabilities" if is_os else "nvdv2",
        Feed_Group=match.namespace,
    )


def _identity(match: Match) -> tuple[str, str, str, str, str]:
    # As VulnerabilityEntry.identity, without building the entry (most matches are unchanged).
    package = match.package
    found = ecosystem(package.type)
    path = "pkgdb" if found is not None and found.os_package else (package.location or "None")
    return (match.id, match.namespace, package.name, package.version, path)


def _summary(match: Match) -> tuple[str, str, str]:
    return (
        match.severity.value,
        ", ".join(match.fix.versions) if match.fix.versions else "None",
        match.urls[0] if match.urls else "None",
    )


def _by_identity(matches: Iterable[Match]) -> dict[tuple[str, str, str, str, str], Match]:
    found: dict[tuple[str, str, str, str, str], Match] = {}
    for match in matches:
        found.setdefault(_identity(match), match)
    return found


def diff_vulnerabilities(previous: Sequence[Match], current: Sequence[Match]) -> VulnerabilityDiff:
    """Anchore's diff of two match lists of one image; entries sorted by identity (stable payloads)."""
    before = _by_identity(previous)
    after = _by_identity(current)
    return VulnerabilityDiff(
        added=tuple(vulnerability_entry(after[key]) for key in sorted(after.keys() - before.keys())),
        removed=tuple(vulnerability_entry(before[key]) for key in sorted(before.keys() - after.keys())),
        updated=tuple(
            vulnerability_entry(after[key])
            for key in sorted(after.keys() & before.keys())
            if _summary(after[key]) != _summary(before[key])
        ),
    )


class PolicyChange(ValueObject):
    """A ``policy_eval`` change: the last and the current evaluation documents, as Anchore sends them."""

    last_eval: dict[str, Any] = Field(default_factory=dict)
    curr_eval: dict[str, Any]
    last_final_action: str | None = None
    curr_final_action: str
    last_status: str | None = None
    curr_status: str


def policy_change(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    image_digest: str,
    previous_final_action: str | None,
    current_final_action: str,
    previous_status: str | None,
    current_status: str,
) -> PolicyChange | None:
    """A change when the final action differs (GO<->WARN fires too, as on Anchore, though both pass).

    A first evaluation (no previous one) is not a change: there is nothing a subscriber was told before.
    """
    if previous is None or previous_final_action is None:
        return None
    if previous_final_action.upper() == current_final_action.upper():
        return None
    return PolicyChange(
        last_eval={**previous, "image_digest": image_digest, "status": previous_status},
        curr_eval={**current, "image_digest": image_digest, "status": current_status},
        last_final_action=previous_final_action,
        curr_final_action=current_final_action,
        last_status=previous_status,
        curr_status=current_status,
    )
