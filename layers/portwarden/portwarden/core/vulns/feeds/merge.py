"""Combining records that share an identity (id, namespace).

The same identity arrives more than once when a feed is split in files (Alpine ``main`` and
``community`` of one branch) or when an incremental update restates an advisory. Merging is a union:
affected packages, aliases, URLs, CVSS and CWEs are combined without duplicates, in first-seen order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from portwarden.core.model.vulnerability import Severity, VulnerabilityRecord
from portwarden.core.vulns.feeds.severity import highest

_T = TypeVar("_T")


def merge_records(records: Iterable[VulnerabilityRecord]) -> list[VulnerabilityRecord]:
    """One record per (id, namespace), in first-seen order."""
    grouped: dict[tuple[str, str], list[VulnerabilityRecord]] = {}
    for record in records:
        grouped.setdefault((record.id, record.namespace), []).append(record)
    return [group[0] if len(group) == 1 else merge_group(group) for group in grouped.values()]


def merge_group(group: list[VulnerabilityRecord]) -> VulnerabilityRecord:
    """Merge records of one identity. The severity is the highest stated, with the source that stated it.

    ``withdrawn`` is kept only when every part is withdrawn: a live statement outweighs a withdrawn one.
    """
    first = group[0]
    severity = highest(record.severity for record in group)
    severity_source = next((record.severity_source for record in group if record.severity is severity), None)
    withdrawn_dates = [record.withdrawn for record in group]
    return first.model_copy(
        update={
            "aliases": _union(record.aliases for record in group),
            "summary": next((record.summary for record in group if record.summary), None),
            "description": next((record.description for record in group if record.description), None),
            "severity": severity,
            "severity_source": severity_source if severity is not Severity.UNKNOWN else None,
            "cvss": _union(record.cvss for record in group),
            "urls": _union(record.urls for record in group),
            "cwes": _union(record.cwes for record in group),
            "published": _earliest(record.published for record in group),
            "modified": _latest(record.modified for record in group),
            "withdrawn": _latest(withdrawn_dates) if all(withdrawn_dates) else None,
            "affected": _union(record.affected for record in group),
        }
    )


def _union(parts: Iterable[tuple[_T, ...]]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(item for part in parts for item in part))


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _latest(values: Iterable[datetime | None]) -> datetime | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None
