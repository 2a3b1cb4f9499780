"""Queries across the account's images: by vulnerability and by package (Anchore's ``/query``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import scope
from portwarden.api.shapes import ANCHORE_PACKAGE_TYPES, iso
from portwarden.core.model.records import ImageRecord
from portwarden.core.services.queries import images_by_package, images_by_vulnerability

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

_T = TypeVar("_T")
# Anchore's package type names back to Portwarden's ("dpkg" → "deb"); others are the same.
_PACKAGE_TYPES = {anchore: ours for ours, anchore in ANCHORE_PACKAGE_TYPES.items()}


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
