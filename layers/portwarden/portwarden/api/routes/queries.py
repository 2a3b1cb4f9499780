"""Anchore's ``/query`` routes: the account's images by vulnerability and by package, and the
vulnerability database's records by id."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import scope
from portwarden.api.shapes import ANCHORE_PACKAGE_TYPES, CvssData, CvssScores, iso
from portwarden.core.ecosystems import ECOSYSTEMS
from portwarden.core.errors import InvalidRequestError, NotFoundError
from portwarden.core.model.records import ImageRecord
from portwarden.core.model.vulnerability import CvssScore, FixState
from portwarden.core.services.queries import images_by_package, images_by_vulnerability

if TYPE_CHECKING:
    from portwarden.core.vulns.db import AffectedRow, VulnerabilityDb

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

_T = TypeVar("_T")
# Anchore's package type names back to Portwarden's ("dpkg" → "deb"); others are the same.
_PACKAGE_TYPES = {anchore: ours for ours, anchore in ANCHORE_PACKAGE_TYPES.items()}
# A database row's version format (its comparator) as Anchore names the package type.
_FORMAT_TYPES: dict[str, str] = {}
for _ecosystem in ECOSYSTEMS.values():
    _FORMAT_TYPES.setdefault(_ecosystem.comparator, _ecosystem.anchore_type)
# Ids one request may ask for (each is one indexed lookup).
MAX_QUERIED_IDS = 100


def _page(results: Iterator[_T], page: int, limit: int) -> tuple[list[_T], bool]:
    """One page, and whether another follows (one result past the page is read to know)."""
    window = list(itertools.islice(results, (page - 1) * limit, page * limit + 1))
    return window[:limit], len(window) > limit


def _image(record: ImageRecord) -> dict[str, Any]:
    history = []
    for fulltag in record.repo_tags:
        registry, _, rest = fulltag.partition("/")
        repository, _, tag = rest.rpartition(":")
        history.append(
            {
                "fulltag": fulltag,
                "pullstring": fulltag,
                "registry": registry,
                "repository": repository,
                "repo": repository,
                "tag": tag,
                "detected_at": iso(record.created_at),
                "tag_detected_at": iso(record.created_at),
            }
        )
    return {
        "imageDigest": record.image_digest,
        "digest": record.image_digest,
        "id": (record.image_id or "").removeprefix("sha256:") or None,
        "analyzed_at": iso(record.analyzed_at),
        "tag_history": history,
    }


@router.get("/query/images/by_vulnerability", summary="Images affected by a vulnerability", tags=["queries"])
def query_by_vulnerability(
    vulnerability_id: Annotated[str, Query(min_length=1, description="CVE or advisory id (aliases match)")],
    namespace: str | None = None,
    affected_package: str | None = None,
    severity: str | None = None,
    vendor_only: bool = True,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    current = scope()
    found = images_by_vulnerability(
        current.deps.catalog,
        current.deps.analyses,
        vulnerability_id,
        namespace=namespace,
        affected_package=affected_package,
        severity=severity,
        vendor_only=vendor_only,
    )
    results, more = _page(found, page, limit)
    images = []
    for result in results:
        packages = [
            {
                "name": match.package.name,
                "version": match.package.version,
                "type": ANCHORE_PACKAGE_TYPES.get(match.package.type, match.package.type),
                "namespace": match.namespace,
                "severity": match.severity.value,
            }
            for match in result.matches
        ]
        # anchore-cli reads vulnerable_packages; Anchore's swagger names them affected_packages.
        images.append(
            {"image": _image(result.image), "vulnerable_packages": packages, "affected_packages": packages}
        )
    return {"page": page, "next_page": more, "returned_count": len(images), "images": images}


@router.get("/query/images/by_package", summary="Images containing a package", tags=["queries"])
def query_by_package(
    name: Annotated[str, Query(min_length=1, description="Package name")],
    package_type: str | None = None,
    version: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    current = scope()
    kind = _PACKAGE_TYPES.get(package_type, package_type) if package_type else None
    found = images_by_package(
        current.deps.catalog, current.deps.analyses, name, package_type=kind, version=version
    )
    results, more = _page(found, page, limit)
    images = [
        {
            "image": _image(result.image),
            "packages": [
                {
                    "name": package.name,
                    "version": package.version,
                    "type": ANCHORE_PACKAGE_TYPES.get(package.type.value, package.type.value),
                }
                for package in result.packages
            ],
        }
        for result in results
    ]
    return {"page": page, "next_page": more, "returned_count": len(images), "images": images}


# ---- the vulnerability database by id ------------------------------------------------------------------


def _scores(vuln_id: str, scores: tuple[CvssScore, ...]) -> list[dict[str, Any]]:
    """Anchore's ``nvd_data``/``vendor_data`` entry: the highest v2 and v3 base scores, -1 when absent."""
    v2 = max(
        (s.base_score for s in scores if s.version.startswith("2") and s.base_score is not None), default=-1.0
    )
    v3 = max(
        (s.base_score for s in scores if s.version.startswith("3") and s.base_score is not None), default=-1.0
    )
    if v2 < 0 and v3 < 0:
        return []
    data = CvssData(id=vuln_id, cvss_v2=CvssScores(base_score=v2), cvss_v3=CvssScores(base_score=v3))
    return [data.model_dump(mode="json")]


def _affected_package(row: AffectedRow) -> dict[str, Any]:
    fixes = row.fix_versions
    return {
        "name": row.package_name,
        # Anchore gives the version that fixes it, "*" when none does.
        "version": ", ".join(fixes) if fixes else "*",
        "type": _FORMAT_TYPES.get(row.version_format, row.version_format),
        "will_not_fix": row.fix_state == FixState.WONT_FIX.value,
        "fix_state": row.fix_state,
    }


def vulnerability_records(
    db: VulnerabilityDb,
    ids: list[str],
    *,
    namespace: str | None,
    affected_package: str | None,
    affected_package_version: str | None,
) -> Iterator[dict[str, Any]]:
    """Anchore's vulnerability records of ``ids``: one per (id, namespace) the database states, with the
    packages it affects there (only those named ``affected_package``, and affected at
    ``affected_package_version``, when given; a record left with no package is then left out)."""
    from portwarden.core.vulns.matching.ranges import evaluate

    for vuln_id in ids:
        rows_by_key: dict[tuple[str, str], list[AffectedRow]] = {}
        for row in db.affected_of(vuln_id):
            rows_by_key.setdefault((row.feed, row.namespace), []).append(row)
        records = db.records(vuln_id)
        cves = sorted({cve for record in records for cve in record.cve_ids})
        nvd = db.nvd(cves) if cves else {}
        for record in records:
            if namespace is not None and record.namespace != namespace:
                continue
            rows = rows_by_key.get((record.feed, record.namespace), [])
            if affected_package is not None:
                rows = [row for row in rows if row.package_name == affected_package]
            if affected_package_version is not None:
                rows = [row for row in rows if evaluate(affected_package_version, row) is not None]
            if (affected_package is not None or affected_package_version is not None) and not rows:
                continue
            nvd_data = [
                entry for cve in record.cve_ids if cve in nvd for entry in _scores(cve, nvd[cve].cvss)
            ]
            yield {
                "id": record.id,
                "namespace": record.namespace,
                "severity": record.severity.value,
                "link": record.urls[0] if record.urls else None,
                "description": record.description or record.summary or "",
                "affected_packages": [_affected_package(row) for row in rows],
                "nvd_data": nvd_data,
                "vendor_data": _scores(record.id, record.cvss),
                "references": [{"source": record.source, "url": url, "tags": []} for url in record.urls],
                "aliases": list(record.aliases),
                "source": record.source,
            }


@router.get("/query/vulnerabilities", summary="Vulnerability records by id", tags=["queries"])
def query_vulnerabilities(
    id: Annotated[
        list[str],
        Query(min_length=1, description="Vulnerability ids (repeat the parameter or separate by commas)"),
    ],
    affected_package: str | None = None,
    affected_package_version: str | None = None,
    namespace: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    current = scope()
    ids = list(dict.fromkeys(part.strip() for value in id for part in value.split(",") if part.strip()))
    if not ids:
        raise InvalidRequestError("id: give at least one vulnerability id")
    if len(ids) > MAX_QUERIED_IDS:
        raise InvalidRequestError(f"id: at most {MAX_QUERIED_IDS} ids per request")
    provider = current.need(current.deps.vulnerability_database, "a vulnerability database")
    opened = provider()
    if opened is None:
        # Never an empty (clean-looking) answer before the first sync.
        raise NotFoundError("no vulnerability database yet (sync the feeds)")
    found = vulnerability_records(
        opened.matcher.db,
        ids,
        namespace=namespace,
        affected_package=affected_package,
        affected_package_version=affected_package_version,
    )
    results, more = _page(found, page, limit)
    return {"page": page, "next_page": more, "returned_count": len(results), "vulnerabilities": results}
