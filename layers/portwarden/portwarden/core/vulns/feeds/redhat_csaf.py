"""Red Hat CSAF 2.0 documents: the per-CVE VEX files and the RHSA advisories
(https://security.access.redhat.com/data/csaf/v2/vex/, ``…/advisories/``).

Both kinds share the format: a ``product_tree`` names the platforms (``product_name`` entries with a
CPE, e.g. ``AppStream-9.4.0.Z.MAIN`` = ``cpe:/a:redhat:enterprise_linux:9::appstream``), the components
(``product_version`` entries with a purl, ``pkg:rpm/redhat/openssl@3.0.7-28.el9_4?arch=src&epoch=1``, and
module streams, ``pkg:rpmmod/redhat/nodejs@18:8090020231019152822:a75119d5``) and the relationships
that place a component in a platform (or in a module, itself in a platform): the full product id
``AppStream-8.4.0.Z.AUS:python36:3.6:8040020241213073301:9bf6f064:python-wheel-1:0.31.1-2.module+el8….src``.
``vulnerabilities[].product_status`` then lists full product ids per state.

Mapping:

- one record per document and namespace: the id is the document's ``tracking.id`` (``CVE-2024-8088``
  for VEX, ``RHSA-2024:6163`` for an advisory, whose CVE ids become its aliases), so an updated or
  deleted document replaces exactly its own records;
- only platforms whose CPE is ``cpe:/{o,a}:redhat:enterprise_linux:<major>`` count (``rhel:<major>``);
  CentOS Stream, UBI and RHEL images all read them. EUS/E4S/AUS/TUS streams and layered products are
  skipped. Components are the source rpms (``arch=src``) and, for statements without a version, the
  bare package name;
- a component of a module stream is stored as ``<module>:<stream>::<name>`` (``python36:3.6::python-wheel``),
  the name the matcher searches for a package carrying that modularity label;
- fix states (Red Hat's words in ``remediations[].details`` are kept in ``note``):

  ======================================================  ============================================
  CSAF                                                    result
  ======================================================  ============================================
  ``fixed`` (``vendor_fix``)                              ``fixed`` in the component's EVR
  ``known_affected`` + ``no_fix_planned``                 ``wont-fix`` ("Will not fix", "Out of
                                                          support scope")
  ``known_affected`` + ``none_available``                 ``not-fixed`` ("Affected", "Fix deferred")
  ``known_affected`` without a remediation                ``not-fixed``
  ``known_not_affected``                                  no entry (counted)
  ``under_investigation``                                 no entry (counted): nothing is stated yet
  ======================================================  ============================================

  A package both fixed and still listed as affected in one namespace is ``fixed`` (a fix exists).
  A package fixed in several updates of one major release (the minor releases' z-streams, e.g.
  ``el9_4`` and ``el9``) keeps the newest fix: an image on the release's main stream is fixed only by
  that one (any version below it is below the newest anyway);
- severity is the document's ``aggregate_severity`` (Low, Moderate, Important, Critical), and a
  package whose ``threats`` impact differs carries its own; CVSS vectors come from ``scores``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import (
    AffectedRange,
    CvssScore,
    EventKind,
    FixState,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.feeds._common import (
    FeedInput,
    load_json_document,
    optional_str,
    parse_timestamp,
    require_mapping,
)
from portwarden.core.vulns.feeds.naming import modular_package_name, module_stream, red_hat_cpe_namespace
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.feeds.severity import cvss_score, highest, severity_from_label
from portwarden.core.vulns.versions import get_comparator

SOURCE = "redhat-csaf"
VERSION_FORMAT = "rpm"
CVE_URL = "https://access.redhat.com/security/cve/"
ERRATA_URL = "https://access.redhat.com/errata/"
_ERRATA_ID = re.compile(r"(RH[SBE]A-\d{4}:\d+)")
# ``name-[epoch:]version-release.arch`` as Red Hat spells a component's product id.
_NEVRA = re.compile(
    r"^(?P<name>.+)-(?:(?P<epoch>\d+):)?(?P<version>[^-:]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)$"
)
# Statements without a version name the component bare, a module's with its stream: ``nodejs:18/nodejs``.
_MODULE_COMPONENT = re.compile(r"^(?P<module>[^:/]+:[^:/]+)/(?P<name>[^/]+)$")


@dataclass(frozen=True)
class _Component:
    name: str
    evr: str | None
    arch: str | None
    module: str | None  # ``name:stream`` of the module stream it belongs to


@dataclass(frozen=True)
class _Placement:
    """Where a full product id puts its component: a namespace, and the module stream if any."""

    namespace: str
    component: _Component


@dataclass
class _PackageState:
    fixed: dict[str, None] = field(default_factory=dict)
    affected_note: str | None = None
    wont_fix: bool = False
    affected: bool = False
    severities: list[Severity] = field(default_factory=list)


def document_id_for_path(path: str) -> str:
    """The ``tracking.id`` of the document at ``2024/cve-2024-8088.json`` or ``2024/rhsa-2024_6163.json``.

    Red Hat names every file after its document's id, so a deletion listed by path removes that id.
    """
    stem = path.rsplit("/", 1)[-1].removesuffix(".json")
    return stem.upper().replace("_", ":")


def parse_csaf_document(data: FeedInput, report: FeedParseReport | None = None) -> list[VulnerabilityRecord]:
    """Records of one CSAF JSON document. Raises ``FeedFormatError`` if it is not a CSAF document."""
    document = load_json_document(data, "Red Hat CSAF")
    return records_from_csaf(document, report)


def records_from_csaf(document: Any, report: FeedParseReport | None = None) -> list[VulnerabilityRecord]:
    report = report if report is not None else FeedParseReport(SOURCE)
    try:
        return _records(require_mapping(document, "Red Hat CSAF"), report)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        if isinstance(exc, FeedFormatError):
            raise
        raise FeedFormatError(f"malformed Red Hat CSAF document: {exc}") from exc


def _records(document: Mapping[str, Any], report: FeedParseReport) -> list[VulnerabilityRecord]:
    header = require_mapping(document.get("document"), "CSAF 'document'")
    tracking = require_mapping(header.get("tracking"), "CSAF 'document.tracking'")
    document_id = optional_str(tracking.get("id"))
    if document_id is None:
        raise FeedFormatError("Red Hat CSAF document without tracking.id")
    vulnerabilities = document.get("vulnerabilities") or []
    if not isinstance(vulnerabilities, list):
        raise FeedFormatError(f"Red Hat CSAF {document_id}: 'vulnerabilities' is not a list")
    placements = _placements(document.get("product_tree"), document_id, report)

    aggregate = header.get("aggregate_severity")
    severity = severity_from_label(aggregate.get("text") if isinstance(aggregate, Mapping) else None)
    packages: dict[tuple[str, str], _PackageState] = {}
    cves: dict[str, None] = {}
    errata: dict[str, None] = {}
    cvss: dict[CvssScore, None] = {}
    descriptions: list[str] = []
    for vulnerability in vulnerabilities:
        if not isinstance(vulnerability, Mapping):
            report.warning(document_id, "vulnerability entry is not an object")
            continue
        cve = optional_str(vulnerability.get("cve"))
        if cve:
            cves[cve] = None
        for note in vulnerability.get("notes") or []:
            if isinstance(note, Mapping) and note.get("category") == "description":
                text = optional_str(note.get("text"))
                if text and text not in descriptions:
                    descriptions.append(text)
        for score in vulnerability.get("scores") or []:
            vector = score.get("cvss_v3", {}).get("vectorString") if isinstance(score, Mapping) else None
            scored = cvss_score(vector, source="redhat") if isinstance(vector, str) else None
            if scored is not None:
                cvss[scored] = None
        _apply_statuses(vulnerability, placements, packages, errata, document_id, report)

    by_namespace: dict[str, list[AffectedRange]] = {}
    for (namespace, name), state in packages.items():
        package_range = _affected_range(namespace, name, state, severity)
        if package_range is not None:
            by_namespace.setdefault(namespace, []).append(package_range)

    aliases = tuple(alias for alias in (*cves, *errata) if alias != document_id)
    urls = tuple(
        dict.fromkeys([*(CVE_URL + cve for cve in cves), *(ERRATA_URL + erratum for erratum in errata)])
    )
    records: list[VulnerabilityRecord] = []
    for namespace, affected in by_namespace.items():
        try:
            records.append(
                VulnerabilityRecord(
                    id=document_id,
                    namespace=namespace,
                    source=SOURCE,
                    aliases=aliases,
                    summary=optional_str(header.get("title")),
                    description="\n\n".join(descriptions) or None,
                    severity=severity,
                    severity_source="redhat" if severity is not Severity.UNKNOWN else None,
                    cvss=tuple(cvss),
                    urls=urls,
                    published=parse_timestamp(tracking.get("initial_release_date")),
                    modified=parse_timestamp(tracking.get("current_release_date")),
                    affected=tuple(affected),
                )
            )
        except ValidationError as exc:
            report.error(document_id, f"invalid record: {exc}")
    if not records:
        report.count("no_matchable_product")
    report.records += len(records)
    return records


def _apply_statuses(
    vulnerability: Mapping[str, Any],
    placements: Mapping[str, _Placement],
    packages: dict[tuple[str, str], _PackageState],
    errata: dict[str, None],
    document_id: str,
    report: FeedParseReport,
) -> None:
    # Per product id: the remediation that applies to it (category, details).
    remedies: dict[str, tuple[str, str | None]] = {}
    for remediation in vulnerability.get("remediations") or []:
        if not isinstance(remediation, Mapping):
            continue
        category = optional_str(remediation.get("category")) or ""
        if category == "vendor_fix":
            found = _ERRATA_ID.search(str(remediation.get("url") or ""))
            if found:
                errata[found.group(1)] = None
        if category not in ("vendor_fix", "no_fix_planned", "none_available"):
            continue  # workarounds and mitigations do not change the state
        for product_id in _strings(remediation.get("product_ids")):
            remedies[product_id] = (category, optional_str(remediation.get("details")))
    impacts: dict[str, Severity] = {}
    for threat in vulnerability.get("threats") or []:
        if isinstance(threat, Mapping) and threat.get("category") == "impact":
            impact = severity_from_label(threat.get("details"))
            for product_id in _strings(threat.get("product_ids")):
                impacts[product_id] = impact

    statuses = vulnerability.get("product_status")
    if not isinstance(statuses, Mapping):
        report.warning(document_id, "vulnerability without product_status")
        return
    for status in ("known_not_affected", "under_investigation"):
        listed = len(_strings(statuses.get(status)))
        if listed:
            report.count(status, listed)
    for status in ("fixed", "known_affected"):
        for product_id in _strings(statuses.get(status)):
            placement = placements.get(product_id)
            if placement is None:
                report.count("unmatched_product")
                continue
            component = placement.component
            if component.arch not in (None, "src"):
                continue  # binary packages: the source rpm states the same fix
            name = (
                modular_package_name(component.module, component.name) if component.module else component.name
            )
            state = packages.setdefault((placement.namespace, name), _PackageState())
            if product_id in impacts:
                state.severities.append(impacts[product_id])
            if status == "fixed":
                if component.evr is None:
                    report.warning(document_id, f"fixed product {product_id} without a version")
                    continue
                state.fixed[component.evr] = None
                continue
            category, details = remedies.get(product_id, ("none_available", None))
            state.affected = True
            if category == "no_fix_planned":
                state.wont_fix = True
            state.affected_note = details or state.affected_note


def _affected_range(
    namespace: str, name: str, state: _PackageState, record_severity: Severity
) -> AffectedRange | None:
    package_severity = highest(state.severities) if state.severities else None
    if package_severity is record_severity or package_severity is Severity.UNKNOWN:
        package_severity = None
    if state.fixed:
        comparator = get_comparator(VERSION_FORMAT)
        newest = functools.reduce(
            lambda kept, evr: evr if comparator.compare(evr, kept) > 0 else kept, list(state.fixed)
        )
        return AffectedRange(
            namespace=namespace,
            package_name=name,
            version_format=VERSION_FORMAT,
            ranges=(
                VersionRange(
                    events=(
                        RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                        RangeEvent(kind=EventKind.FIXED, version=newest),
                    )
                ),
            ),
            fix_state=FixState.FIXED,
            fix_versions=(newest,),
            severity=package_severity,
        )
    if not state.affected:
        return None
    return AffectedRange(
        namespace=namespace,
        package_name=name,
        version_format=VERSION_FORMAT,
        ranges=(VersionRange(events=(RangeEvent(kind=EventKind.INTRODUCED, version="0"),)),),
        fix_state=FixState.WONT_FIX if state.wont_fix else FixState.NOT_FIXED,
        severity=package_severity,
        note=state.affected_note,
    )


# ---- the product tree ---------------------------------------------------------------------------------


def _placements(tree: Any, document_id: str, report: FeedParseReport) -> dict[str, _Placement]:
    """Full product id -> (namespace, component), for every relationship that ends on a RHEL platform."""
    if not isinstance(tree, Mapping):
        raise FeedFormatError(f"Red Hat CSAF {document_id}: no product_tree")
    platforms: dict[str, str | None] = {}  # product id -> namespace (None: a platform we do not match)
    components: dict[str, _Component] = {}
    modules: dict[str, str] = {}  # product id -> module stream
    for product in _tree_products(tree.get("branches") or []):
        product_id = optional_str(product.get("product_id"))
        if product_id is None:
            continue
        helper = product.get("product_identification_helper")
        helper = helper if isinstance(helper, Mapping) else {}
        cpe, purl = optional_str(helper.get("cpe")), optional_str(helper.get("purl"))
        if cpe is not None:
            platforms[product_id] = red_hat_cpe_namespace(cpe)
        elif purl is not None and purl.startswith("pkg:rpmmod/"):
            # ``pkg:rpmmod/redhat/<module>@<stream>:<version>:<context>``
            module_name = purl[len("pkg:rpmmod/") :].split("?", 1)[0].split("@", 1)[0].rsplit("/", 1)[-1]
            stream_name = (_purl_version(purl) or "").split(":", 1)[0]
            if module_name and stream_name:
                modules[product_id] = f"{module_name}:{stream_name}"
        else:
            component = _component(product_id, purl)
            if component is not None:
                components[product_id] = component

    # Relationships may nest (a component of a module of a platform): resolve each full id to its
    # platform, carrying the module it passed through.
    relationships: dict[str, tuple[str, str]] = {}
    for relation in tree.get("relationships") or []:
        if not isinstance(relation, Mapping):
            continue
        full = relation.get("full_product_name")
        full_id = optional_str(full.get("product_id")) if isinstance(full, Mapping) else None
        reference = optional_str(relation.get("product_reference"))
        parent = optional_str(relation.get("relates_to_product_reference"))
        if full_id and reference and parent:
            relationships[full_id] = (reference, parent)

    placements: dict[str, _Placement] = {}
    for full_id, (reference, parent) in relationships.items():
        component = components.get(reference)
        if component is None:
            continue
        module, platform = None, parent
        for _ in range(4):  # platform, or module in platform; deeper chains are not Red Hat's
            if platform in platforms:
                break
            nested = relationships.get(platform)
            if nested is None:
                break
            module = module or modules.get(nested[0])
            platform = nested[1]
        namespace = platforms.get(platform)
        if namespace is None:
            continue
        if module is not None and component.module is None:
            component = _Component(component.name, component.evr, component.arch, module)
        placements[full_id] = _Placement(namespace, component)
    if not placements and relationships:
        report.count("no_rhel_platform")
    return placements


def _tree_products(branches: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    stack = list(branches) if isinstance(branches, list) else []
    while stack:
        branch = stack.pop()
        if not isinstance(branch, Mapping):
            continue
        product = branch.get("product")
        if isinstance(product, Mapping):
            yield product
        children = branch.get("branches")
        if isinstance(children, list):
            stack.extend(children)


def _purl_version(purl: str) -> str | None:
    head = purl.split("?", 1)[0]
    if "@" not in head:
        return None
    return unquote(head.rsplit("@", 1)[1]) or None


def _purl_qualifiers(purl: str) -> dict[str, str]:
    _, _, query = purl.partition("?")
    qualifiers: dict[str, str] = {}
    for pair in query.split("&"):
        key, separator, value = pair.partition("=")
        if separator:
            qualifiers[key.lower()] = unquote(value)
    return qualifiers


def _component(product_id: str, purl: str | None) -> _Component | None:
    """A package component from its purl (``pkg:rpm/redhat/name@version-release?arch=src&epoch=1``), or
    from its product id when it has none."""
    if purl is not None and purl.startswith("pkg:rpm/"):
        name = unquote(purl[len("pkg:rpm/") :].split("?", 1)[0].split("@", 1)[0].rsplit("/", 1)[-1])
        qualifiers = _purl_qualifiers(purl)
        version = _purl_version(purl)
        epoch = qualifiers.get("epoch", "").strip()
        evr = None
        if version is not None:
            evr = f"{epoch}:{version}" if epoch and epoch != "0" else version
        rpmmod = qualifiers.get("rpmmod")
        return _Component(name, evr, qualifiers.get("arch"), module_stream(rpmmod) if rpmmod else None)
    nevra = _NEVRA.match(product_id)
    if nevra is not None:
        epoch = nevra.group("epoch")
        evr = f"{nevra.group('version')}-{nevra.group('release')}"
        return _Component(
            nevra.group("name"),
            f"{epoch}:{evr}" if epoch and epoch != "0" else evr,
            nevra.group("arch"),
            None,
        )
    modular = _MODULE_COMPONENT.match(product_id)
    if modular is not None:
        return _Component(modular.group("name"), None, None, module_stream(modular.group("module")))
    if purl is None and re.fullmatch(r"[A-Za-z0-9._+-]+", product_id):
        return _Component(product_id, None, None, None)
    return None


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
