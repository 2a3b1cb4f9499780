"""The Debian security tracker JSON (https://security-tracker.debian.org/tracker/data/json).

Shape: ``{source package: {CVE or TEMP id: {description, scope, debianbug, releases: {codename:
{status, repositories, fixed_version, urgency, nodsa?, nodsa_reason?}}}}}``. Packages are *source*
packages, so the matcher looks installed packages up by their ``Source:``.

Each (id, release) becomes one ``VulnerabilityRecord`` in ``debian:<version>`` (``bookworm`` ->
``debian:12``, ``sid`` -> ``debian:unstable``), with one ``AffectedRange`` per source package. The
tracker states what OSV's Debian data flattens away, so the mapping to ``fix_state`` is explicit and
follows the security team's own definitions (https://security-team.debian.org/security_tracker.html):
an open issue tagged ``<no-dsa>`` gets no security advisory *now* but can still be fixed in a point
release, ``<postponed>`` defers the fix to a later update, and only ``<ignored>`` (and an unsupported
release) means no fix will come. In the JSON the tag is ``nodsa_reason`` (``""`` for a plain no-dsa)
and the security team's words are ``nodsa``:

=============================================  =====================================================
tracker entry                                  result
=============================================  =====================================================
``resolved``, ``fixed_version`` ``"0"``        not affected: no entry (the package never had the flaw)
``resolved``, ``fixed_version`` X              ``fixed`` in X (range ``introduced 0, fixed X``)
``resolved`` without a version                 ``unknown``
``open``, ``nodsa_reason`` ``ignored``         ``wont-fix`` (``note``: ``ignored: <reason>``)
``open``, urgency ``end-of-life``              ``wont-fix``: the package is no longer supported there
``open``, ``nodsa_reason`` ``postponed``       ``not-fixed``: deferred (``note``: ``postponed: <reason>``)
``open``, ``nodsa`` set, ``nodsa_reason`` ""   ``not-fixed``: minor issue, left to a point release
                                               (``note``: ``no-dsa: <reason>``)
``open`` otherwise                             ``not-fixed``
``undetermined`` (or anything else)            ``unknown``
=============================================  =====================================================

Severity is the urgency (``unimportant`` -> Negligible, ``low``/``medium``/``high``; the ``**``
suffix, which marks an urgency derived from NVD, is ignored; ``not yet assigned`` and
``end-of-life`` give Unknown, to be filled from NVD). It is set per package, and the record takes
the highest of its packages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.feeds._common import FeedInput, as_binary_stream, maybe_gunzip, optional_str
from portwarden.core.vulns.feeds._jsonstream import iter_object_members
from portwarden.core.vulns.feeds.naming import DEBIAN_CODENAMES, normalize_package_name
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.feeds.severity import highest, severity_from_label

SOURCE = "debian-tracker"
VERSION_FORMAT = "dpkg"
TRACKER_URL = "https://security-tracker.debian.org/tracker/"

# ``nodsa_reason`` values: the tracker's ``<ignored>`` tag is its only "will not be fixed" (besides an
# unsupported release); ``<postponed>`` and a plain ``<no-dsa>`` ("") leave the fix to a later update.
_IGNORED = "ignored"
_DEFERRED_REASONS = {"postponed": "postponed", "": "no-dsa"}


class _ReleaseState(NamedTuple):
    """One package's state in one release, kept compact until the records are assembled."""

    package: str
    fix_state: FixState
    fixed_version: str | None
    severity: Severity
    note: str | None


def iter_debian_tracker(
    data: FeedInput,
    report: FeedParseReport | None = None,
    *,
    codenames: Mapping[str, str] | None = None,
) -> Iterator[VulnerabilityRecord]:
    """Records of the tracker JSON, ordered by namespace then id.

    The document is decoded one source package at a time; what is kept until the end is one small
    tuple per (package, id, release), because a record gathers every package an id affects.
    ``codenames`` overrides the codename -> release mapping (for a release newer than this code).
    A document that is not JSON, or not an object, raises ``FeedFormatError``.
    """
    report = report if report is not None else FeedParseReport(SOURCE)
    known_codenames = dict(DEBIAN_CODENAMES if codenames is None else codenames)
    states: dict[tuple[str, str], list[_ReleaseState]] = {}
    descriptions: dict[str, str | None] = {}
    unknown_codenames: set[str] = set()

    stream = maybe_gunzip(as_binary_stream(data))
    for package, issues in iter_object_members(stream, "Debian tracker JSON"):
        if not isinstance(issues, Mapping):
            report.error(package, "package entry is not an object")
            continue
        for vuln_id, issue in issues.items():
            if not isinstance(issue, Mapping):
                report.error(vuln_id, f"entry for {package} is not an object")
                continue
            releases = issue.get("releases")
            if not isinstance(releases, Mapping):
                # An empty list is how the tracker writes "no release data" (e.g. a removed package).
                report.count("no_release_data")
                continue
            descriptions.setdefault(vuln_id, optional_str(issue.get("description")))
            for codename, release in releases.items():
                if codename not in known_codenames:
                    if codename not in unknown_codenames:
                        unknown_codenames.add(codename)
                        report.warning(vuln_id, f"unknown Debian release {codename!r} skipped")
                    report.count("unknown_release")
                    continue
                state = _release_state(vuln_id, package, release, report)
                if state is not None:
                    states.setdefault((known_codenames[codename], vuln_id), []).append(state)

    for (release, vuln_id), entries in sorted(states.items(), key=lambda item: (item[0][0], item[0][1])):
        record = _build_record(vuln_id, f"debian:{release}", entries, descriptions.get(vuln_id), report)
        if record is not None:
            yield record


def _release_state(vuln_id: str, package: str, release: Any, report: FeedParseReport) -> _ReleaseState | None:
    if not isinstance(release, Mapping):
        report.warning(vuln_id, f"release entry of {package} is not an object")
        return None
    status = optional_str(release.get("status"))
    fixed_version = optional_str(release.get("fixed_version"))
    urgency = optional_str(release.get("urgency"))
    severity = severity_from_label(urgency)
    nodsa = optional_str(release.get("nodsa"))
    nodsa_reason = optional_str(release.get("nodsa_reason"))

    if status == "resolved":
        if fixed_version == "0":
            report.count("not_affected")
            return None
        if fixed_version is None:
            return _ReleaseState(package, FixState.UNKNOWN, None, severity, "resolved without a version")
        return _ReleaseState(package, FixState.FIXED, fixed_version, severity, None)
    if status == "open":
        if (urgency or "").lower() == "end-of-life":
            return _ReleaseState(package, FixState.WONT_FIX, None, severity, "end-of-life")
        if nodsa_reason == _IGNORED:
            return _ReleaseState(package, FixState.WONT_FIX, None, severity, _note(_IGNORED, nodsa))
        if "nodsa" in release or "nodsa_reason" in release:
            tag = _DEFERRED_REASONS.get(nodsa_reason or "")
            if tag is None:
                # A tag newer than this code: a fix is not ruled out, so it stays open.
                report.warning(vuln_id, f"unknown no-dsa reason {nodsa_reason!r} for {package}")
                tag = f"no-dsa ({nodsa_reason})"
            return _ReleaseState(package, FixState.NOT_FIXED, None, severity, _note(tag, nodsa))
        return _ReleaseState(package, FixState.NOT_FIXED, None, severity, None)
    if status != "undetermined":
        report.warning(vuln_id, f"unknown tracker status {status!r} for {package}")
    return _ReleaseState(package, FixState.UNKNOWN, None, severity, status)


def _note(tag: str, reason: str | None) -> str:
    return f"{tag}: {reason}" if reason else tag


def _build_record(
    vuln_id: str,
    namespace: str,
    entries: list[_ReleaseState],
    description: str | None,
    report: FeedParseReport,
) -> VulnerabilityRecord | None:
    try:
        affected = tuple(_affected_range(namespace, entry) for entry in entries)
        severity = highest(entry.severity for entry in entries)
        record = VulnerabilityRecord(
            id=vuln_id,
            namespace=namespace,
            source=SOURCE,
            description=description,
            severity=severity,
            severity_source="debian" if severity is not Severity.UNKNOWN else None,
            urls=(TRACKER_URL + vuln_id,),
            affected=affected,
        )
    except ValidationError as exc:
        report.error(vuln_id, f"invalid record for {namespace}: {exc}")
        return None
    report.records += 1
    return record


def _affected_range(namespace: str, entry: _ReleaseState) -> AffectedRange:
    events = [RangeEvent(kind=EventKind.INTRODUCED, version="0")]
    if entry.fixed_version is not None:
        events.append(RangeEvent(kind=EventKind.FIXED, version=entry.fixed_version))
    return AffectedRange(
        namespace=namespace,
        package_name=normalize_package_name(namespace, entry.package),
        version_format=VERSION_FORMAT,
        ranges=(VersionRange(events=tuple(events)),),
        fix_state=entry.fix_state,
        fix_versions=(entry.fixed_version,) if entry.fixed_version else (),
        severity=entry.severity if entry.severity is not Severity.UNKNOWN else None,
        note=entry.note,
    )
