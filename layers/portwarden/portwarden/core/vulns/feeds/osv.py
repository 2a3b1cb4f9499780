"""OSV (https://ossf.github.io/osv-schema/): single records, per-ecosystem ``all.zip``, ``modified_id.csv``.

One OSV document becomes one ``VulnerabilityRecord`` per namespace it affects: a GHSA advisory for a
PyPI package gives a ``pypi`` record, an Ubuntu CVE gives one record per Ubuntu release. Affected
entries for the same package are combined into one ``AffectedRange``.

What is kept and what is not:

- ``ECOSYSTEM`` and ``SEMVER`` ranges with their events (``introduced``, ``fixed``, ``last_affected``,
  ``limit``) and the explicit ``versions`` lists. ``GIT`` ranges (commit hashes) cannot be compared with
  package versions and are skipped; an entry left with neither ranges nor versions is dropped.
- ``withdrawn`` is kept on the record: the matcher ignores withdrawn records, and an incremental sync
  needs to see the withdrawal to replace what it stored before.
- ``aliases`` plus ``upstream`` (Ubuntu names the CVE there) become the record's aliases.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime
from os import PathLike
from typing import IO, Any

from pydantic import ValidationError

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.base import ValueObject
from portwarden.core.model.vulnerability import (
    AffectedRange,
    CvssScore,
    EventKind,
    FixState,
    RangeEvent,
    RangeType,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.feeds._common import (
    FeedInput,
    iter_text_lines,
    optional_str,
    parse_timestamp,
    require_mapping,
    str_tuple,
)
from portwarden.core.vulns.feeds.naming import NamespaceInfo, normalize_package_name, osv_namespace
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.feeds.severity import cvss_score, severity_from_cvss, severity_from_label

SOURCE = "osv"

# No genuine advisory comes near this; a member this large is a broken or hostile archive.
DEFAULT_MAX_MEMBER_BYTES = 32 * 1024 * 1024
# A non-seekable stream is spooled (zip needs its central directory at the end); small ones stay in memory.
_SPOOL_IN_MEMORY_BYTES = 64 * 1024 * 1024

_EVENT_KINDS = {kind.value: kind for kind in EventKind}
_RANGE_TYPES = {kind.value: kind for kind in RangeType}
_CHANNEL_NOTES = {
    "pro": "Ubuntu Pro (ESM) channel",
    "ltss": "SUSE LTSS channel (long-term service pack support subscription)",
}

# Errors that confine themselves to one malformed document: it is counted and the archive goes on.
_RECORD_ERRORS = (FeedFormatError, ValidationError, TypeError, AttributeError, ValueError, KeyError)


class ModifiedId(ValueObject):
    """One line of ``modified_id.csv``: when an advisory last changed, and its id.

    The root-level file prefixes ids with their ecosystem (``PyPI/GHSA-…``); ``ecosystem`` holds it.
    """

    modified: datetime
    id: str
    ecosystem: str | None = None


def parse_osv_json(data: FeedInput | str, report: FeedParseReport | None = None) -> list[VulnerabilityRecord]:
    """One OSV JSON document (``GET /v1/vulns/{id}`` or a file of ``all.zip``) -> its records."""
    try:
        text = data if isinstance(data, str | bytes | bytearray) else _read_bytes(data)
        document = json.loads(text)
    except ValueError as exc:
        raise FeedFormatError(f"OSV record: not a readable JSON document ({exc})") from exc
    return parse_osv_record(document, report)


def parse_osv_record(document: Any, report: FeedParseReport | None = None) -> list[VulnerabilityRecord]:
    """One parsed OSV document -> one record per namespace. Raises ``FeedFormatError`` if it is malformed."""
    report = report if report is not None else FeedParseReport(SOURCE)
    try:
        return _parse_osv_record(document, report)
    except (ValidationError, TypeError, AttributeError, ValueError, KeyError) as exc:
        # Shapes the schema does not allow (a string where a list belongs…): one malformed record.
        raise FeedFormatError(f"malformed OSV record: {exc}") from exc


def _parse_osv_record(document: Any, report: FeedParseReport) -> list[VulnerabilityRecord]:
    doc = require_mapping(document, "OSV record")
    vuln_id = optional_str(doc.get("id"))
    if vuln_id is None:
        raise FeedFormatError("OSV record without an id")
    affected_entries = doc.get("affected") or []
    if not isinstance(affected_entries, list):
        raise FeedFormatError(f"OSV record {vuln_id}: 'affected' is not a list")

    cvss, vendor_severity, vendor_source = _record_severity_inputs(vuln_id, doc, report)
    severity, severity_source = _choose_severity(vendor_severity, vendor_source, cvss)

    report.count("documents")
    by_namespace = _affected_by_namespace(vuln_id, affected_entries, report)
    if not by_namespace:
        report.count("no_matchable_affected")
        return []

    database_specific = doc.get("database_specific")
    cwes = str_tuple(database_specific.get("cwe_ids")) if isinstance(database_specific, Mapping) else ()
    aliases = tuple(
        alias
        for alias in dict.fromkeys((*str_tuple(doc.get("aliases")), *str_tuple(doc.get("upstream"))))
        if alias != vuln_id
    )
    references = doc.get("references")
    urls = tuple(
        dict.fromkeys(
            ref["url"]
            for ref in (references if isinstance(references, list) else [])
            if isinstance(ref, Mapping) and isinstance(ref.get("url"), str)
        )
    )
    records = [
        VulnerabilityRecord(
            id=vuln_id,
            namespace=namespace,
            source=SOURCE,
            aliases=aliases,
            summary=optional_str(doc.get("summary")),
            description=optional_str(doc.get("details")),
            severity=severity,
            severity_source=severity_source,
            cvss=cvss,
            urls=urls,
            cwes=cwes,
            published=parse_timestamp(doc.get("published")),
            modified=parse_timestamp(doc.get("modified")),
            withdrawn=parse_timestamp(doc.get("withdrawn")),
            affected=tuple(affected),
        )
        for namespace, affected in by_namespace.items()
    ]
    if records[0].withdrawn is not None:
        report.count("withdrawn")
    report.records += len(records)
    return records


def iter_osv_zip(
    archive: FeedInput | PathLike[str] | str,
    report: FeedParseReport | None = None,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> Iterator[VulnerabilityRecord]:
    """Records of every document in an OSV ``all.zip``, read one member at a time.

    A member that is not valid JSON or not a valid OSV record is counted in ``report`` and skipped.
    An archive that is truncated or not a zip raises ``FeedFormatError`` (when opened, or when a
    damaged member is reached), because a partial archive must not pass for a complete one.
    """
    report = report if report is not None else FeedParseReport(SOURCE)
    with _open_zip(archive) as zip_file:
        for info in zip_file.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                report.count("non_json_members")
                continue
            if info.file_size > max_member_bytes:
                report.error(info.filename, f"member of {info.file_size} bytes exceeds {max_member_bytes}")
                continue
            try:
                raw = zip_file.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise FeedFormatError(f"OSV archive is damaged at member {info.filename}: {exc}") from exc
            try:
                document = json.loads(raw)
            except ValueError as exc:
                report.error(info.filename, f"not valid JSON: {exc}")
                continue
            try:
                records = parse_osv_record(document, report)
            except _RECORD_ERRORS as exc:
                report.error(info.filename, f"malformed OSV record: {exc}")
                continue
            yield from records


def iter_modified_ids(
    data: FeedInput | Iterable[str],
    since: datetime | None = None,
    report: FeedParseReport | None = None,
) -> Iterator[ModifiedId]:
    """Entries of ``modified_id.csv`` (``<ISO 8601>,<ID>``, newest first) modified after ``since``.

    Reading stops at the first line not newer, so a sync reads only the head of the file. The bound is
    exclusive: ``since`` is the modification time of the newest advisory the previous sync applied, so
    an advisory stamped exactly then is already in the database (an inclusive bound made every sync of
    an unchanged mirror fetch it again, and fail where the mirror keeps only ``all.zip``).
    """
    report = report if report is not None else FeedParseReport(SOURCE)
    for line in iter_text_lines(data):
        if not line.strip():
            continue
        stamp_text, separator, identifier = line.partition(",")
        stamp = parse_timestamp(stamp_text)
        identifier = identifier.strip()
        if not separator or stamp is None or not identifier:
            report.warning(None, f"unreadable modified_id.csv line: {line[:120]!r}")
            continue
        if since is not None and stamp <= since:
            return
        ecosystem, _, bare_id = identifier.rpartition("/")
        yield ModifiedId(modified=stamp, id=bare_id, ecosystem=ecosystem or None)


def _record_severity_inputs(
    vuln_id: str, doc: Mapping[str, Any], report: FeedParseReport
) -> tuple[tuple[CvssScore, ...], Severity, str | None]:
    """The record's CVSS scores, and the severity its source states in words (with where it said it)."""
    cvss: list[CvssScore] = []
    vendor_severity, vendor_source = Severity.UNKNOWN, None

    database_specific = doc.get("database_specific")
    if isinstance(database_specific, Mapping):
        labelled = severity_from_label(database_specific.get("severity"))
        if labelled is not Severity.UNKNOWN:
            vendor_severity, vendor_source = labelled, "database_specific"

    for entry in doc.get("severity") or []:
        if not isinstance(entry, Mapping):
            report.warning(vuln_id, "severity entry is not an object")
            continue
        kind, score = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            report.warning(vuln_id, f"severity entry without type or score: {dict(entry)!r}")
            continue
        if kind.startswith("CVSS_V"):
            scored = cvss_score(score, source=SOURCE)
            if scored is None:
                report.warning(vuln_id, f"unreadable {kind} vector {score!r}")
            else:
                cvss.append(scored)
        elif vendor_source is None:
            # A vendor's own scale, e.g. {"type": "Ubuntu", "score": "medium"}.
            labelled = severity_from_label(score)
            if labelled is not Severity.UNKNOWN:
                vendor_severity, vendor_source = labelled, kind.lower()
    return tuple(dict.fromkeys(cvss)), vendor_severity, vendor_source


def _choose_severity(
    vendor_severity: Severity, vendor_source: str | None, cvss: tuple[CvssScore, ...]
) -> tuple[Severity, str | None]:
    if vendor_source is not None:
        return vendor_severity, vendor_source
    from_cvss = severity_from_cvss(cvss)
    if from_cvss is not Severity.UNKNOWN:
        return from_cvss, "cvss"
    return Severity.UNKNOWN, None


class _PackageAccumulator:
    """Affected entries of one package in one namespace, combined into one ``AffectedRange``."""

    def __init__(self, info: NamespaceInfo, name: str) -> None:
        self.info = info
        self.name = name
        self.ranges: list[VersionRange] = []
        self.versions: dict[str, None] = {}
        self.severities: list[Severity] = []

    def build(self) -> AffectedRange:
        fixed = [
            event.version for span in self.ranges for event in span.events if event.kind is EventKind.FIXED
        ]
        if fixed:
            fix_state = FixState.FIXED
        elif self.ranges:
            # Only introduced/last_affected/limit events: the source knows of no fixed version.
            fix_state = FixState.NOT_FIXED
        else:
            # An explicit version list says nothing about a fix.
            fix_state = FixState.UNKNOWN
        severity = max(self.severities, key=lambda item: item.rank) if self.severities else None
        return AffectedRange(
            namespace=self.info.namespace,
            package_name=self.name,
            version_format=self.info.version_format,
            ranges=tuple(self.ranges),
            versions=tuple(self.versions),
            fix_state=fix_state,
            fix_versions=tuple(dict.fromkeys(fixed)),
            severity=severity,
            note=_CHANNEL_NOTES.get(self.info.channel or ""),
        )


def _affected_by_namespace(
    vuln_id: str, entries: list[Any], report: FeedParseReport
) -> dict[str, list[AffectedRange]]:
    packages: dict[tuple[str, str, str | None], _PackageAccumulator] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            report.warning(vuln_id, "affected entry is not an object")
            continue
        package = entry.get("package")
        ecosystem = optional_str(package.get("ecosystem")) if isinstance(package, Mapping) else None
        name = optional_str(package.get("name")) if isinstance(package, Mapping) else None
        if ecosystem is None or name is None:
            report.warning(vuln_id, "affected entry without package ecosystem and name")
            continue
        info = osv_namespace(ecosystem)
        if info is None:
            report.count("unsupported_ecosystem")
            continue
        ranges = _parse_ranges(vuln_id, entry.get("ranges"), report)
        versions = str_tuple(entry.get("versions"))
        if not ranges and not versions:
            report.count("affected_without_comparable_ranges")
            continue
        normalized = normalize_package_name(info.namespace, name)
        key = (info.namespace, normalized, info.channel)
        accumulator = packages.get(key)
        if accumulator is None:
            accumulator = packages[key] = _PackageAccumulator(info, normalized)
        accumulator.ranges.extend(ranges)
        accumulator.versions.update(dict.fromkeys(versions))
        package_severity = _affected_severity(entry)
        if package_severity is not Severity.UNKNOWN:
            accumulator.severities.append(package_severity)

    by_namespace: dict[str, list[AffectedRange]] = {}
    for (namespace, _, _), accumulator in packages.items():
        by_namespace.setdefault(namespace, []).append(accumulator.build())
    return by_namespace


def _parse_ranges(vuln_id: str, raw_ranges: Any, report: FeedParseReport) -> list[VersionRange]:
    ranges: list[VersionRange] = []
    if not isinstance(raw_ranges, list):
        return ranges
    for raw in raw_ranges:
        if not isinstance(raw, Mapping):
            report.warning(vuln_id, "range is not an object")
            continue
        kind = raw.get("type")
        if kind == "GIT":
            report.count("git_range_skipped")
            continue
        range_type = _RANGE_TYPES.get(kind) if isinstance(kind, str) else None
        if range_type is None:
            report.warning(vuln_id, f"range of unknown type {kind!r} skipped")
            continue
        events: list[RangeEvent] = []
        for event in raw.get("events") or []:
            parsed = _parse_event(event)
            if parsed is None:
                report.warning(vuln_id, f"unreadable range event {event!r}")
                continue
            events.append(parsed)
        if events:
            ranges.append(VersionRange(type=range_type, events=tuple(events)))
    return ranges


def _parse_event(event: Any) -> RangeEvent | None:
    if not isinstance(event, Mapping) or len(event) != 1:
        return None
    ((key, version),) = event.items()
    kind = _EVENT_KINDS.get(key)
    if kind is None or not isinstance(version, str) or not version.strip():
        return None
    return RangeEvent(kind=kind, version=version.strip())


def _affected_severity(entry: Mapping[str, Any]) -> Severity:
    """A per-package severity: OSV 1.5 ``affected[].severity`` vectors, or a distro's urgency label."""
    scores = [
        scored
        for item in entry.get("severity") or []
        if isinstance(item, Mapping) and isinstance(item.get("score"), str)
        for scored in [cvss_score(item["score"], source=SOURCE)]
        if scored is not None
    ]
    if scores:
        return severity_from_cvss(scores)
    specific = entry.get("ecosystem_specific")
    if isinstance(specific, Mapping):
        return severity_from_label(specific.get("urgency") or specific.get("severity"))
    return Severity.UNKNOWN


@contextmanager
def _open_zip(archive: FeedInput | PathLike[str] | str) -> Iterator[zipfile.ZipFile]:
    with ExitStack() as cleanup:
        source: IO[bytes] | PathLike[str] | str
        if isinstance(archive, bytes | bytearray | memoryview):
            source = io.BytesIO(bytes(archive))
        elif isinstance(archive, str | PathLike) or _seekable(archive):
            source = archive
        else:
            spooled = cleanup.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES))
            shutil.copyfileobj(archive, spooled)
            spooled.seek(0)
            source = spooled
        try:
            zip_file = cleanup.enter_context(zipfile.ZipFile(source))
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise FeedFormatError(f"OSV archive is truncated or not a zip file: {exc}") from exc
        yield zip_file


def _read_bytes(data: memoryview | IO[bytes]) -> bytes:
    return bytes(data) if isinstance(data, memoryview) else data.read()


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False
