"""Read-only overviews a dashboard needs: one row per image with its counts, and SARIF reports.

``GET /summaries/images`` answers, for every image of the account, what a list page shows at a
glance: tags, analysis status, distro, package count, vulnerability counts by severity (and how
many of them have a fix), and the newest stored policy result for the active bundle. It never
evaluates or matches anything (a list must not write); counts come from the stored matches.

Reading thousands of stored match documents per request would be slow, so each image's row is
remembered under a key that changes whenever its inputs do: the image record (a new analysis), the
published vulnerability database (a rematch follows a new one) and the active bundle (a
re-evaluation follows it). Anything else (an evaluation made by ``/check``, a time-based trigger)
shows within ``SUMMARY_TTL_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field

from portwarden.api.context import Scope, scope
from portwarden.api.routes.images import MAX_LISTED_IMAGES, DigestParam, _analyzed, _matches
from portwarden.api.shapes import Body, iso
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.model.vulnerability import FixState, Severity

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


class _Facts(Body):
    """What one image contributes: its list row, and its vulnerabilities for the cross-image view."""

    row: str
    # (id, severity, package name, KEV) per match.
    vulnerabilities: tuple[tuple[str, str, str, bool], ...]


class _SummaryCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[tuple[str, str], tuple[tuple[Any, ...], float, _Facts]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, account: str, digest: str, key: tuple[Any, ...]) -> _Facts | None:
        entry = self._entries.get((account, digest))
        if entry is None or entry[0] != key or entry[1] < time.monotonic():
            return None
        return entry[2]

    def put(self, account: str, digest: str, key: tuple[Any, ...], rendered: _Facts) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[(account, digest)] = (key, time.monotonic() + SUMMARY_TTL_SECONDS, rendered)


_CACHE = _SummaryCache()


def _facts(current: Scope, record: ImageRecord, active: tuple[str, Any] | None) -> _Facts:
    counts: dict[str, int] | None = None
    fixable: dict[str, int] | None = None
    kev: int | None = None
    found: tuple[tuple[str, str, str, bool], ...] = ()
    if record.analysis_status is AnalysisStatus.ANALYZED:
        matches = current.deps.analyses.get_matches(record.image_digest)
        if matches is not None:
            found = tuple((m.id, m.severity.value, m.package.name, m.kev) for m in matches)
            counts = dict.fromkeys(SEVERITY_KEYS, 0)
            fixable = dict.fromkeys(SEVERITY_KEYS, 0)
            kev = 0
            for match in matches:
                key = match.severity.value.lower()
                counts[key] += 1
                if match.fix.state is FixState.FIXED and match.fix.versions:
                    fixable[key] += 1
                kev += int(match.kev)
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
    return _Facts(row=row.model_dump_json(by_alias=True), vulnerabilities=found)


def _all_facts(current: Scope) -> list[_Facts]:
    account = current.caller.account
    pointer = current.deps.feeds.get_db_pointer() if current.deps.feeds is not None else None
    bundle = current.deps.policies.active_bundle() if current.deps.policies is not None else None
    active = (bundle.bundle_id, bundle.updated_at) if bundle is not None else None
    database = (pointer.sha256, pointer.built_at) if pointer is not None else None
    facts: list[_Facts] = []
    for record in current.deps.catalog.list_images(limit=MAX_LISTED_IMAGES):
        key = (record, database, active)
        found = _CACHE.get(account, record.image_digest, key)
        if found is None:
            found = _facts(current, record, active)
            _CACHE.put(account, record.image_digest, key, found)
        facts.append(found)
    return facts


@router.get(
    "/summaries/images",
    summary="Every image with its vulnerability counts and policy status (read-only)",
    tags=["images"],
    responses={
        200: {"description": "The images", "content": {"application/json": {"model": list[ImageSummary]}}}
    },
)
def image_summaries() -> Response[str]:
    rows = [facts.row for facts in _all_facts(scope())]
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
    for facts in _all_facts(scope()):
        seen: set[str] = set()
        for vuln, severity, package, kev in facts.vulnerabilities:
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
