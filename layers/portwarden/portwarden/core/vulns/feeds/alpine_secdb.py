"""Alpine secdb (https://secdb.alpinelinux.org/<branch>/<repo>.json), one file per branch and repository.

Shape: ``{distroversion: "v3.20", reponame, urlprefix, apkurl, archs, packages: [{pkg: {name,
secfixes: {"<fixed apk version>": ["CVE-…", "CVE-… XSA-…"]}}}]}``. Names are *origin* (source)
package names. The feed lists fixes only:

- a secfix version X for an id gives ``fixed`` in X (range ``introduced 0, fixed X``);
- the key ``"0"`` means the package was never affected: no entry is produced;
- an entry holding several ids (``"CVE-2018-7540 XSA-252"``) names one issue: the first id is the
  record id and the others are its aliases;
- an id listed under two versions of the same package keeps both ranges, so versions below either
  fix are reported (the conservative reading; the order of apk versions is the comparator's business).

There is no severity in the feed; NVD fills it in.

Wolfi (https://packages.wolfi.dev/os/security.json) and Chainguard
(https://packages.cgr.dev/chainguard/security.json) publish the same format for their rolling
distributions; they are read with the namespace given (``wolfi:rolling``, ``chainguard:rolling``)
instead of one derived from ``distroversion``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from portwarden.core.vulns.feeds._common import FeedInput, load_json_document, optional_str, require_mapping
from portwarden.core.vulns.feeds.naming import alpine_namespace, normalize_package_name
from portwarden.core.vulns.feeds.report import FeedParseReport

SOURCE = "alpine-secdb"
VERSION_FORMAT = "apk"
NOT_AFFECTED_KEY = "0"
ISSUE_URL = "https://security.alpinelinux.org/vuln/"


def parse_alpine_secdb(
    data: FeedInput,
    report: FeedParseReport | None = None,
    *,
    namespace: str | None = None,
    source: str = SOURCE,
) -> list[VulnerabilityRecord]:
    """Records of one secdb JSON file. Raises ``FeedFormatError`` if it is not a secdb document.

    ``namespace`` (and ``source``) are given for the distributions that publish Alpine's format for
    a rolling release (Wolfi, Chainguard); without it the namespace is the Alpine ``distroversion``.
    """
    document = load_json_document(data, "secdb")
    return records_from_secdb(document, report, namespace=namespace, source=source)


def records_from_secdb(
    document: Any,
    report: FeedParseReport | None = None,
    *,
    namespace: str | None = None,
    source: str = SOURCE,
) -> list[VulnerabilityRecord]:
    """Records of an already parsed secdb document (the JSON, or the equivalent YAML the site also serves)."""
    report = report if report is not None else FeedParseReport(source)
    secdb = require_mapping(document, "secdb")
    if namespace is None:
        distroversion = optional_str(secdb.get("distroversion"))
        namespace = alpine_namespace(distroversion) if distroversion else None
        if namespace is None:
            raise FeedFormatError(f"Alpine secdb: unrecognized distroversion {distroversion!r}")
    packages = secdb.get("packages")
    if not isinstance(packages, list):
        raise FeedFormatError("secdb: 'packages' is not a list")

    # id -> (aliases, package -> fixed versions), in first-seen order.
    issues: dict[str, tuple[dict[str, None], dict[str, dict[str, None]]]] = {}
    for entry in packages:
        pkg = entry.get("pkg") if isinstance(entry, Mapping) else None
        name = optional_str(pkg.get("name")) if isinstance(pkg, Mapping) else None
        if name is None or not isinstance(pkg, Mapping):
            report.error(None, f"package entry without a name: {entry!r:.120}")
            continue
        secfixes = pkg.get("secfixes") or {}
        if not isinstance(secfixes, Mapping):
            report.error(name, "secfixes is not an object")
            continue
        package_name = normalize_package_name(namespace, name)
        for version, ids in secfixes.items():
            fixed_version = str(version).strip()
            if not isinstance(ids, list):
                report.warning(name, f"secfixes[{fixed_version!r}] is not a list")
                continue
            for listed in ids:
                tokens = str(listed).split() if listed is not None else []
                if not tokens:
                    continue
                if fixed_version == NOT_AFFECTED_KEY:
                    report.count("not_affected")
                    continue
                aliases, fixes = issues.setdefault(tokens[0], ({}, {}))
                aliases.update(dict.fromkeys(tokens[1:]))
                fixes.setdefault(package_name, {})[fixed_version] = None

    records: list[VulnerabilityRecord] = []
    for vuln_id, (aliases, fixes) in issues.items():
        try:
            records.append(
                VulnerabilityRecord(
                    id=vuln_id,
                    namespace=namespace,
                    source=source,
                    aliases=tuple(alias for alias in aliases if alias != vuln_id),
                    urls=(ISSUE_URL + vuln_id,) if vuln_id.startswith("CVE-") and source == SOURCE else (),
                    affected=tuple(
                        _affected_range(namespace, package_name, tuple(versions))
                        for package_name, versions in fixes.items()
                    ),
                )
            )
        except ValidationError as exc:
            report.error(vuln_id, f"invalid record: {exc}")
    report.records += len(records)
    return records


def _affected_range(namespace: str, package_name: str, fixed_versions: tuple[str, ...]) -> AffectedRange:
    return AffectedRange(
        namespace=namespace,
        package_name=package_name,
        version_format=VERSION_FORMAT,
        ranges=tuple(
            VersionRange(
                events=(
                    RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                    RangeEvent(kind=EventKind.FIXED, version=fixed),
                )
            )
            for fixed in fixed_versions
        ),
        fix_state=FixState.FIXED,
        fix_versions=fixed_versions,
    )
