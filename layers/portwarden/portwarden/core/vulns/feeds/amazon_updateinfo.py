"""Amazon Linux advisories (ALAS) from a release repository's ``updateinfo.xml.gz``.

Each Amazon Linux repository publishes its advisories in its metadata: ``repodata/repomd.xml`` names the
``updateinfo`` file, and the CDN's ``mirror.list`` names the repository. Shape of one advisory::

    <update type="security" …><id>ALAS2-2018-939</id><title>…</title>
      <issued date="2018-01-11 21:05"/><updated date="2018-01-16 01:28"/><severity>critical</severity>
      <description>…</description>
      <references><reference type="cve" id="CVE-2017-5754" href="…"/>…</references>
      <pkglist><collection short="amazon-linux-2"><package name="kernel" epoch="0" version="4.9.76"
        release="38.79.amzn2" arch="x86_64">…</package>…</collection></pkglist></update>

Mapping:

- the release comes from the advisory id: ``ALAS2-…`` and Amazon Linux 2's extras topics
  (``ALAS2DOCKER-…``, ``ALAS2KERNEL-5.10-…``) are ``amzn:2``, ``ALAS2023-…`` is ``amzn:2023``,
  ``ALAS2022-…`` is ``amzn:2022``; other ids (the original Amazon Linux AMI's ``ALAS-…``) are skipped;
- one record per advisory, its id the ALAS id and its aliases the CVE ids of its references;
- every package of ``pkglist`` is *fixed* in its ``[epoch:]version-release`` (range ``introduced 0,
  fixed EVR``); the list names binary packages, and the matcher searches binary names as well as
  source names. An extras advisory notes its topic on each package (``extras topic docker``): extras
  packages share the ``amzn:2`` namespace with the core repository, as Amazon's own tooling sees them;
- severity is the advisory's own (``critical``, ``important``, ``medium``, ``low``);
- advisories whose ``type`` is not ``security`` (bug fixes, enhancements) are skipped.

The XML is parsed with defusedxml (no DTD, no entity expansion) and streamed, one advisory at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring, iterparse
from pydantic import ValidationError

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.feeds._common import FeedInput, as_binary_stream, iter_text_lines, maybe_gunzip
from portwarden.core.vulns.feeds.naming import amazon_namespace, normalize_package_name
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.feeds.severity import severity_from_label

SOURCE = "amazon-updateinfo"
VERSION_FORMAT = "rpm"
ADVISORY_URL = "https://alas.aws.amazon.com/{site}/ALAS{topic}-{year}-{number}.html"
_SITES = {"amzn:2": "AL2", "amzn:2022": "AL2022", "amzn:2023": "AL2023"}
_ADVISORY_ID = re.compile(
    r"^ALAS(?P<release>2023|2022|2)(?P<topic>[A-Z0-9][A-Z0-9.\-]*?)?-(?P<year>\d{4})-(?P<number>\d+)$"
)
_REPO_NAMESPACE = "{http://linux.duke.edu/metadata/repo}"


def iter_updateinfo(data: FeedInput, report: FeedParseReport | None = None) -> Iterator[VulnerabilityRecord]:
    """Records of an ``updateinfo.xml`` (gzip or not). Raises ``FeedFormatError`` on unreadable XML."""
    report = report if report is not None else FeedParseReport(SOURCE)
    stream = maybe_gunzip(as_binary_stream(data))
    saw_root = False
    try:
        for event, element in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                if not saw_root:
                    saw_root = True
                    if element.tag != "updates":
                        raise FeedFormatError(f"updateinfo: the document is <{element.tag}>, not <updates>")
                continue
            if element.tag != "update":
                continue
            record = _record(element, report)
            element.clear()
            if record is not None:
                report.records += 1
                yield record
    except (ParseError, DefusedXmlException, OSError, EOFError) as exc:
        raise FeedFormatError(f"updateinfo: not a readable XML document ({exc})") from exc
    if not saw_root:
        raise FeedFormatError("updateinfo: empty document")


def updateinfo_location(repomd: bytes) -> str:
    """The ``href`` of the ``updateinfo`` entry of a ``repodata/repomd.xml`` (relative to the repository)."""
    try:
        root = fromstring(repomd, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise FeedFormatError(f"repomd.xml: not a readable XML document ({exc})") from exc
    for data in root.iter(f"{_REPO_NAMESPACE}data"):
        if data.get("type") != "updateinfo":
            continue
        location = data.find(f"{_REPO_NAMESPACE}location")
        href = location.get("href") if location is not None else None
        if href:
            return href
    raise FeedFormatError("repomd.xml names no updateinfo file")


def mirror_from_list(mirror_list: FeedInput) -> str:
    """The first repository URL of a ``mirror.list`` (one URL a line)."""
    for line in iter_text_lines(mirror_list):
        candidate = line.strip()
        if candidate.startswith(("https://", "http://", "file://")):
            return candidate.rstrip("/")
    raise FeedFormatError("mirror.list names no repository URL")


def _text(element: Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _timestamp(element: Element, tag: str) -> datetime | None:
    child = element.find(tag)
    value = child.get("date") if child is not None else None
    if not value:
        return None
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _evr(package: Element) -> str | None:
    version, release = package.get("version"), package.get("release")
    if not version or not release:
        return None
    epoch = (package.get("epoch") or "0").strip()
    evr = f"{version.strip()}-{release.strip()}"
    return evr if epoch in ("", "0") else f"{epoch}:{evr}"


def _record(update: Element, report: FeedParseReport) -> VulnerabilityRecord | None:
    advisory_id = _text(update, "id")
    if advisory_id is None:
        report.error(None, "update without an id")
        return None
    if (update.get("type") or "security") != "security":
        report.count("not_security")
        return None
    parsed = _ADVISORY_ID.match(advisory_id)
    namespace = amazon_namespace(parsed.group("release")) if parsed else None
    if parsed is None or namespace is None:
        report.count("unsupported_release")
        return None
    topic = (parsed.group("topic") or "").lower() or None

    fixes: dict[str, dict[str, None]] = {}
    for package in update.iter("package"):
        name = (package.get("name") or "").strip()
        evr = _evr(package)
        if not name or evr is None:
            report.warning(advisory_id, f"package without name, version or release: {package.attrib!r:.120}")
            continue
        fixes.setdefault(normalize_package_name(namespace, name), {})[evr] = None
    if not fixes:
        report.error(advisory_id, "advisory without a fixed package")
        return None

    aliases = tuple(
        dict.fromkeys(
            reference.get("id", "").strip()
            for reference in update.iter("reference")
            if (reference.get("type") or "").lower() == "cve" and reference.get("id", "").strip()
        )
    )
    urls = (
        ADVISORY_URL.format(
            site=_SITES[namespace],
            topic=parsed.group("topic") or "",
            year=parsed.group("year"),
            number=parsed.group("number"),
        ),
    )
    severity = severity_from_label(_text(update, "severity"))
    note = f"Amazon Linux 2 extras topic {topic}" if topic else None
    try:
        return VulnerabilityRecord(
            id=advisory_id,
            namespace=namespace,
            source=SOURCE,
            aliases=aliases,
            summary=_text(update, "title"),
            description=_text(update, "description"),
            severity=severity,
            severity_source="amazon" if severity.rank else None,
            urls=urls,
            published=_timestamp(update, "issued"),
            modified=_timestamp(update, "updated") or _timestamp(update, "issued"),
            affected=tuple(
                AffectedRange(
                    namespace=namespace,
                    package_name=name,
                    version_format=VERSION_FORMAT,
                    ranges=tuple(
                        VersionRange(
                            events=(
                                RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                                RangeEvent(kind=EventKind.FIXED, version=evr),
                            )
                        )
                        for evr in evrs
                    ),
                    fix_state=FixState.FIXED,
                    fix_versions=tuple(evrs),
                    note=note,
                )
                for name, evrs in fixes.items()
            ),
        )
    except ValidationError as exc:
        report.error(advisory_id, f"invalid record: {exc}")
        return None
