"""How records become rows and rows become values: the row tuples the matcher reads, the JSON text of
list columns, and the encoders the builder writes with.

Reading is the hot path: rows stay plain tuples, list columns stay JSON text until a property or a
cached decoder needs them.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from portwarden.core.model.vulnerability import (
    AffectedRange,
    CvssScore,
    FixState,
    NvdRecord,
    Severity,
    VulnerabilityRecord,
)
from portwarden.core.vulns.versions.range_plans import build_plan

# The feed and namespace of a record are those of the query that reads it (one query per pair).
VULNERABILITY_SELECT = (
    "SELECT id, source, severity, severity_source, aliases, summary, description, cvss, urls, published"
    " FROM vulnerabilities"
)
AFFECTED_SELECT = (
    "SELECT feed, vuln_id, namespace, package_name, version_format, fix_state, fix_versions,"
    " ranges, versions, severity, note, plan FROM affected"
)


class AffectedRow(NamedTuple):
    """One affected package as the matcher reads it (plain tuples: this is the hot path).

    The list columns stay in their stored JSON text: most rows are only ever evaluated through a cache
    keyed by those texts, so decoding happens once per distinct text, on demand (the properties).
    """

    feed: str
    vuln_id: str
    namespace: str
    package_name: str
    version_format: str
    fix_state: str
    fix_versions_text: str
    # The stored text of ``ranges``: also a hashable identity for caching evaluations.
    ranges_text: str
    versions_text: str
    severity: str | None
    note: str | None
    # The stored range plan (``versions.range_plans``); None when a comparator of the rows is unknown.
    plan_text: str | None

    @property
    def fix_versions(self) -> tuple[str, ...]:
        return decode_strings(self.fix_versions_text)

    @property
    def ranges(self) -> tuple[tuple[str, tuple[dict[str, str], ...]], ...]:
        """Each range: (range type, events as OSV one-key mappings, ready for ``in_osv_range``)."""
        return decode_ranges(self.ranges_text)

    @property
    def versions(self) -> tuple[str, ...]:
        return decode_strings(self.versions_text)


class VulnerabilityRow(NamedTuple):
    feed: str
    id: str
    namespace: str
    source: str
    severity: Severity
    severity_source: str | None
    aliases: tuple[str, ...]
    summary: str | None
    description: str | None
    # The stored JSON of the CVSS scores: a match needs four of their fields, decoded from the text.
    cvss_text: str
    urls: tuple[str, ...]
    published: datetime | None
    # The CVE ids the record answers to (its id and aliases): the join key of NVD, KEV and EPSS.
    cve_ids: tuple[str, ...]

    @property
    def cvss(self) -> tuple[CvssScore, ...]:
        return decode_cvss(self.cvss_text)


class NvdRow(NamedTuple):
    cve_id: str
    severity: Severity
    cvss: tuple[CvssScore, ...]


def encode_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---- encoding (the builder) ---------------------------------------------------------------------------


def vulnerability_values(feed: str, record: VulnerabilityRecord) -> tuple[Any, ...]:
    """The ``vulnerabilities`` row of a record."""
    # The fields a match reports get columns of their own; "document" keeps the rest (CWEs, dates).
    document = record.model_dump(
        mode="json", exclude={"affected", "id", "namespace", "source", "severity", "severity_source"}
    )
    return (
        feed,
        record.id,
        record.namespace,
        record.source,
        record.severity.value,
        record.severity_source,
        int(record.withdrawn is not None),
        encode_json(document.pop("aliases")),
        document.pop("summary"),
        document.pop("description"),
        encode_json(document.pop("cvss")),
        encode_json(document.pop("urls")),
        document.pop("published"),
        encode_json(document),
    )


def affected_values(feed: str, vuln_id: str, affected: AffectedRange) -> tuple[Any, ...]:
    """The ``affected`` row of one affected package, with its range plan."""
    return (
        feed,
        vuln_id,
        affected.namespace,
        affected.package_name,
        affected.version_format,
        affected.fix_state.value,
        encode_json(list(affected.fix_versions)),
        encode_json(
            [
                {
                    "type": span.type.value,
                    "events": [{event.kind.value: event.version} for event in span.events],
                }
                for span in affected.ranges
            ]
        ),
        encode_json(list(affected.versions)),
        affected.severity.value if affected.severity is not None else None,
        affected.note,
        build_plan(
            affected.version_format,
            [
                (span.type.value, [(event.kind.value, event.version) for event in span.events])
                for span in affected.ranges
            ],
        ),
    )


def nvd_values(feed: str, record: NvdRecord) -> tuple[Any, ...]:
    return (
        record.id,
        feed,
        record.severity.value,
        encode_json([score.model_dump(mode="json") for score in record.cvss]),
        record.description,
        record.last_modified.isoformat() if record.last_modified else None,
    )


def plan_of_stored(version_format: str, ranges_text: str) -> str | None:
    """The range plan of a stored row (rows carried over from a file planned by other key code)."""
    return build_plan(
        version_format,
        [
            (range_type, [(kind, bound) for event in events for kind, bound in event.items()])
            for range_type, events in decode_ranges(ranges_text)
        ],
    )


# ---- decoding (the reader and the matcher) ------------------------------------------------------------

# ``json.loads`` spends more time around the C scanner than in it on the small texts of a row (it checks
# for surrounding whitespace, which the database never writes): the decoder's own entry point skips that.
decode_json = json.JSONDecoder().raw_decode


def vulnerability_row(feed: str, namespace: str, row: tuple[Any, ...]) -> VulnerabilityRow:
    vuln_id, source, severity, severity_source, aliases_text, summary, description, cvss_text, urls_text = (
        row[:9]
    )
    published = row[9]
    # Empty lists are the common case: no decoding at all for them.
    aliases: tuple[str, ...] = tuple(decode_json(aliases_text)[0]) if aliases_text != "[]" else ()
    if aliases:
        cve_ids = tuple(dict.fromkeys(name for name in (vuln_id, *aliases) if name.startswith("CVE-")))
    else:
        cve_ids = (vuln_id,) if vuln_id.startswith("CVE-") else ()
    # Positional: this runs once per matched record, and keyword construction costs twice as much.
    return VulnerabilityRow(
        feed,
        vuln_id,
        namespace,
        source,
        _SEVERITIES.get(severity) or Severity(severity),
        severity_source,
        aliases,
        summary,
        description,
        cvss_text,
        tuple(decode_json(urls_text)[0]) if urls_text != "[]" else (),
        datetime.fromisoformat(published) if published else None,
        cve_ids,
    )


_SEVERITIES = {severity.value: severity for severity in Severity}


@lru_cache(maxsize=16384)
def decode_cvss(text: str) -> tuple[CvssScore, ...]:
    if text == "[]":
        return ()
    return tuple(CvssScore.model_validate(score) for score in decode_json(text)[0])


@lru_cache(maxsize=16384)
def decode_cvss_fields(text: str) -> tuple[tuple[str, str, float | None, str | None], ...]:
    """(version, vector, base score, source) of each stored score: what a match reports of them.

    The text is the database's own dump of validated scores, so the fields already have their types
    (the score is made a float all the same, as validation would).
    """
    if text == "[]":
        return ()
    return tuple(
        (
            score["version"],
            score["vector"],
            None if score.get("base_score") is None else float(score["base_score"]),
            score.get("source"),
        )
        for score in decode_json(text)[0]
    )


@lru_cache(maxsize=65536)
def decode_strings(text: str) -> tuple[str, ...]:
    return tuple(decode_json(text)[0])


@lru_cache(maxsize=65536)
def decode_ranges(text: str) -> tuple[tuple[str, tuple[dict[str, str], ...]], ...]:
    # Many packages share identical range documents ("introduced 0, fixed X"): decode each text once.
    return tuple((span["type"], tuple(span["events"])) for span in decode_json(text)[0])


FIX_STATES = {state.value: state for state in FixState}
