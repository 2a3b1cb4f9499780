"""Read-only overviews a dashboard needs: one row per image with its counts, and SARIF reports.

``GET /summaries/images`` answers, for every image of the account, what a list page shows at a
glance: tags, analysis status, distro, package count, vulnerability counts by severity (and how
many of them have a fix), and the newest stored policy result for the active bundle. It never
evaluates or matches anything (a list must not write); counts are the ones the store keeps beside
each image's matches, so that a list never decodes match documents (only matches stored before the
store kept counts are decoded, once, and the store then keeps their counts).

Each image's row (and, for the cross-image vulnerability view, its decoded matches) is remembered
under a key that changes whenever its inputs do: the image record (a new analysis), the published
vulnerability database (a rematch follows a new one) and the active bundle (a re-evaluation follows
it). Anything else (an evaluation made by ``/check``, a time-based trigger)
shows within ``SUMMARY_TTL_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any, Generic, TypeVar

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field

from portwarden.api.context import Scope, scope
from portwarden.api.routes.images import MAX_LISTED_IMAGES, DigestParam, _analyzed, _matches
from portwarden.api.shapes import Body, iso
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.model.vulnerability import Severity

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

SUMMARY_TTL_SECONDS = 30.0
SEVERITY_KEYS = tuple(severity.value.lower() for severity in reversed(Severity))


class PolicyStatus(Body):
    final_action: str
    status: str
    policy_id: str = Field(alias="policyId")
    last_evaluation: str | None
    tag: str | None


class ImageSummary(Body):
    """One image as a list page shows it."""

    image_digest: str = Field(alias="imageDigest")
    analysis_status: str
    fulltags: list[str]
    distro: str | None
    package_count: int
    created_at: str | None
    analyzed_at: str | None
    last_error: str | None
    # None while the image has no matches (not analyzed, or analyzed before the first feed sync).
    vulnerabilities: dict[str, int] | None
    fixable: dict[str, int] | None
    kev_count: int | None
    # The newest stored evaluation made with the active bundle (with any, when the account has no
    # bundle and the built-in default applies); None when there is none.
    policy: PolicyStatus | None


# (id, severity, package name, KEV) per match of one image.
_Spread = tuple[tuple[str, str, str, bool], ...]


Value = TypeVar("Value")


class _SummaryCache(Generic[Value]):
    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[tuple[str, str], tuple[tuple[Any, ...], float, Value]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, account: str, digest: str, key: tuple[Any, ...]) -> Value | None:
        entry = self._entries.get((account, digest))
        if entry is None or entry[0] != key or entry[1] < time.monotonic():
            return None
        return entry[2]

    def put(self, account: str, digest: str, key: tuple[Any, ...], value: Value) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[(account, digest)] = (key, time.monotonic() + SUMMARY_TTL_SECONDS, value)


# Rendered list rows, and decoded matches for the cross-image view (only that view pays for them).
_ROWS: _SummaryCache[str] = _SummaryCache()
_SPREADS: _SummaryCache[_Spread] = _SummaryCache()


def _row(current: Scope, record: ImageRecord, active: tuple[str, Any] | None) -> str:
    counts: dict[str, int] | None = None
    fixable: dict[str, int] | None = None
    kev: int | None = None
    if record.analysis_status is AnalysisStatus.ANALYZED:
        match_counts = current.deps.analyses.get_match_counts(record.image_digest)
        if match_counts is not None:
            # Most severe first, every severity present.
            counts = {key: match_counts.by_severity.get(key, 0) for key in SEVERITY_KEYS}
            fixable = {key: match_counts.fixable.get(key, 0) for key in SEVERITY_KEYS}
            kev = match_counts.kev
    policy = None
    if record.analysis_status is AnalysisStatus.ANALYZED:
        # Usually the newest evaluation is the active bundle's: one row read, not the whole history.
        newest = current.deps.evaluations.latest_evaluation(record.image_digest)
        history = (
            [newest]
            if newest is None or active is None or newest.bundle_id == active[0]
            else current.deps.evaluations.list_evaluations(record.image_digest)
        )
        for stored in history:
            if stored is None:
                break
            # Without a stored bundle the built-in default applies, whatever its id.
            if active is None or stored.bundle_id == active[0]:
                policy = PolicyStatus(
                    final_action=stored.final_action,
                    status=stored.status,
                    policy_id=stored.bundle_id,
                    last_evaluation=iso(stored.evaluated_at),
                    tag=stored.repo_tag,
                )
                break
    row = ImageSummary(
        image_digest=record.image_digest,
        analysis_status=record.analysis_status.value,
        fulltags=list(record.repo_tags),
        distro=record.distro,
        package_count=record.package_count,
        created_at=iso(record.created_at),
        analyzed_at=iso(record.analyzed_at),
        last_error=record.last_error,
        vulnerabilities=counts,
        fixable=fixable,
        kev_count=kev,
        policy=policy,
    )
    return row.model_dump_json(by_alias=True)


def _spread(current: Scope, record: ImageRecord) -> _Spread:
    if record.analysis_status is not AnalysisStatus.ANALYZED:
        return ()
    matches = current.deps.analyses.get_matches(record.image_digest) or []
    return tuple((m.id, m.severity.value, m.package.name, m.kev) for m in matches)


def _active_bundle(current: Scope) -> tuple[str, Any] | None:
    bundle = current.deps.policies.active_bundle() if current.deps.policies is not None else None
    return (bundle.bundle_id, bundle.updated_at) if bundle is not None else None


def _database(current: Scope) -> tuple[str, Any] | None:
    pointer = current.deps.feeds.get_db_pointer() if current.deps.feeds is not None else None
    return (pointer.sha256, pointer.built_at) if pointer is not None else None


def _all_rows(current: Scope) -> list[str]:
    account = current.caller.account
    database, active = _database(current), _active_bundle(current)
    rows: list[str] = []
    for record in current.deps.catalog.list_images(limit=MAX_LISTED_IMAGES):
        key = (record, database, active)
        row = _ROWS.get(account, record.image_digest, key)
        if row is None:
            row = _row(current, record, active)
            _ROWS.put(account, record.image_digest, key, row)
        rows.append(row)
    return rows


def _all_spreads(current: Scope) -> list[_Spread]:
    account = current.caller.account
    database = _database(current)
    spreads: list[_Spread] = []
    for record in current.deps.catalog.list_images(limit=MAX_LISTED_IMAGES):
        key = (record, database)
        spread = _SPREADS.get(account, record.image_digest, key)
        if spread is None:
            spread = _spread(current, record)
            _SPREADS.put(account, record.image_digest, key, spread)
        spreads.append(spread)
    return spreads


@router.get(
    "/summaries/images",
    summary="Every image with its vulnerability counts and policy status (read-only)",
    tags=["images"],
    responses={
        200: {"description": "The images", "content": {"application/json": {"model": list[ImageSummary]}}}
    },
)
def image_summaries() -> Response[str]:
    rows = _all_rows(scope())
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body="[" + ",".join(rows) + "]"
    )


class VulnerabilitySpread(Body):
    vuln: str
    severity: str
    kev: bool
    # How many of the account's images have it, and in which packages.
    image_count: int
    packages: list[str]


@router.get(
    "/summaries/vulnerabilities",
    summary="The vulnerabilities across the account's images, most severe and widespread first",
    tags=["images"],
)
def vulnerability_summaries(
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    kev_only: Annotated[bool, Query(description="Only CISA KEV-listed vulnerabilities")] = False,
) -> list[VulnerabilitySpread]:
    rank = {severity.value: severity.rank for severity in Severity}
    spread: dict[str, tuple[str, bool, set[str], int]] = {}
    for found in _all_spreads(scope()):
        seen: set[str] = set()
        for vuln, severity, package, kev in found:
            entry = spread.get(vuln)
            if entry is None:
                entry = (severity, kev, set(), 0)
            packages = entry[2]
            packages.add(package)
            count = entry[3] + (vuln not in seen)
            seen.add(vuln)
            best = severity if rank.get(severity, 0) > rank.get(entry[0], 0) else entry[0]
            spread[vuln] = (best, entry[1] or kev, packages, count)
    ordered = sorted(spread.items(), key=lambda item: (-rank.get(item[1][0], 0), -item[1][3], item[0]))
    return [
        VulnerabilitySpread(
            vuln=vuln, severity=severity, kev=kev, image_count=count, packages=sorted(packages)
        )
        for vuln, (severity, kev, packages, count) in ordered
        if kev or not kev_only
    ][:limit]


@router.get(
    "/images/<digest>/sarif",
    summary="The vulnerability report as SARIF 2.1.0 (code-scanning tools read it)",
    tags=["images"],
)
def get_sarif(digest: DigestParam) -> Response[str]:
    from portwarden.core.sbom.sarif import to_sarif_json

    current = scope()
    _, analysis = _analyzed(current, digest)
    _, matches = _matches(current, digest)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=to_sarif_json(analysis, matches),
    )
