"""Images: add, list, get, delete, content, metadata, vulnerabilities, policy check, artifacts, SBOMs.

Shapes follow Anchore Engine's v1 API where clients read them. Adding an image resolves its tag to a
digest at once and answers the image record (``not_analyzed``) in a list, as Anchore does; the
analysis runs asynchronously (the state machine on AWS, the worker pool of ``portwarden serve``).
Every route sees only the images of the account the request acts for: another account's image is
a 404, exactly like a missing one.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field, ValidationError, model_validator

from portwarden.api.context import Scope, scope
from portwarden.api.dependencies import current_event
from portwarden.api.shapes import (
    CONTENT_TYPES,
    METADATA_TYPES,
    OS_PACKAGE_TYPES,
    AnchoreImage,
    AnchoreVulnerability,
    DeleteImageResponse,
    ImageTagSummary,
    SuppressedVulnerability,
    VulnerabilityReport,
    evaluation_detail,
    file_rows,
    iso,
    metadata_document,
    package_rows,
)
from portwarden.core.errors import (
    ConflictError,
    InvalidPlatformError,
    InvalidReferenceError,
    InvalidRequestError,
    NotFoundError,
)
from portwarden.core.image.platforms import parse_known_platform
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.explanation import Explanation
from portwarden.core.model.match import Match
from portwarden.core.model.pipeline import DEFAULT_PLATFORM, AnalysisRequest
from portwarden.core.model.policy import PolicyBundle, PolicyEvaluation
from portwarden.core.model.records import AnalysisStatus, EvaluationRecord, ImageRecord
from portwarden.core.model.vulnerability import FixState
from portwarden.core.ports import AnalysisCancellation
from portwarden.core.services.images import ImageSubmission, ensure_tag_subscriptions, full_tag, submit_image
from portwarden.core.triage.model import TriageInputs, TriageOutcome

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

MAX_LISTED_IMAGES = 10_000
DIGEST_DESCRIPTION = "Manifest digest (sha256:...); URL-encoded or not"
DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
DigestParam = Annotated[str, Path(pattern=DIGEST_PATTERN, description=DIGEST_DESCRIPTION)]


# ---- request bodies ---------------------------------------------------------------------------------


class _Request(ValueObject):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TagSource(_Request):
    pullstring: str
    dockerfile: str | None = None


class DigestSource(_Request):
    pullstring: str
    tag: str
    creation_timestamp_override: str | None = None
    dockerfile: str | None = None


class ImageSourceRequest(_Request):
    tag: TagSource | None = None
    digest: DigestSource | None = None
    archive: dict[str, Any] | None = None
    import_: dict[str, Any] | None = Field(default=None, alias="import")


class ImageAnalysisRequest(_Request):
    """Anchore's ``ImageAnalysisRequest``: ``source`` with exactly one kind, or the legacy top-level
    ``tag``/``digest``/``dockerfile``; ``annotations`` are kept with the image. ``source`` may also
    be a source string (``registry:REF`` or a bare reference), and ``force`` may be in the body."""

    source: str | ImageSourceRequest | None = None
    tag: str | None = None
    digest: str | None = None
    dockerfile: str | None = None
    created_at: str | None = None
    annotations: dict[str, str] | None = None
    platform: str = DEFAULT_PLATFORM
    force: bool = False

    @model_validator(mode="after")
    def _one_image(self) -> ImageAnalysisRequest:
        if self.source is None and self.tag is None:
            raise ValueError("give the image: source or tag")
        if self.source is not None and self.tag is not None:
            raise ValueError("give exactly one of source and tag")
        return self


class AnalysisAccepted(_Request):
    """What a host that does not resolve tags at once answers (the AWS state machine today)."""

    source: str
    repo_tag: str | None = None
    execution_arn: str
    # False when an identical request had already started this execution.
    started: bool


def _decode_dockerfile(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError("dockerfile must be base64-encoded UTF-8 text") from exc


def _submission(body: ImageAnalysisRequest, *, force: bool, autosubscribe: bool) -> ImageSubmission:
    source = body.source
    tag: str | None
    digest: str | None = None
    dockerfile = body.dockerfile
    if isinstance(source, str):
        tag = _registry_location(source, "source")
    elif source is not None:
        kinds = [k for k in ("tag", "digest", "archive", "import_") if getattr(source, k) is not None]
        if len(kinds) != 1:
            raise InvalidRequestError("source must name exactly one of tag, digest, archive, import")
        if source.archive is not None:
            raise InvalidRequestError("analysis archives are not supported by this service")
        if source.tag is not None:
            tag = _registry_location(source.tag.pullstring, "source.tag.pullstring")
            dockerfile = source.tag.dockerfile or dockerfile
        else:
            assert source.digest is not None
            tag = _registry_location(source.digest.tag, "source.digest.tag")
            dockerfile = source.digest.dockerfile or dockerfile
            digest = source.digest.pullstring.rpartition("@")[2]
            if not digest.startswith("sha256:"):
                raise InvalidRequestError("source.digest.pullstring must be repo@sha256:…")
    else:
        tag = _registry_location(body.tag, "tag") if body.tag is not None else None
        if body.digest:
            digest = body.digest.rpartition("@")[2]
        if tag is None:
            raise InvalidRequestError("an image to add needs a tag (or source.tag.pullstring)")
    return ImageSubmission(
        tag=tag,
        digest=digest,
        platform=_platform(body.platform),
        force=force,
        autosubscribe=autosubscribe,
        annotations=body.annotations,
        dockerfile=_decode_dockerfile(dockerfile),
    )


# ---- lookups ------------------------------------------------------------------------------------------


def _image(current: Scope, digest: str) -> ImageRecord:
    record = current.deps.catalog.get_image(digest)
    if record is None:
        raise NotFoundError(f"image {digest} not found")
    return record


def _analyzed(current: Scope, digest: str) -> tuple[ImageRecord, ImageAnalysis]:
    """The image and its analysis; Anchore's 404 text for an image not analyzed yet (clients read it)."""
    return _analyzed_record(current, digest), _stored_analysis(current, digest)


def _analyzed_record(current: Scope, digest: str) -> ImageRecord:
    record = _image(current, digest)
    if record.analysis_status is not AnalysisStatus.ANALYZED:
        raise NotFoundError(f"image is not analyzed - analysis_status: {record.analysis_status.value}")
    return record


def _stored_analysis(current: Scope, digest: str) -> ImageAnalysis:
    analysis = current.deps.analyses.get_analysis(digest)
    if analysis is None:
        raise NotFoundError(f"image {digest} has no stored analysis")
    return analysis


def _by_image_id(current: Scope, image_id: str) -> ImageRecord:
    wanted = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    for record in current.deps.catalog.list_images(limit=MAX_LISTED_IMAGES):
        if record.image_id == wanted:
            return record
    raise NotFoundError(f"no image with id {image_id}")


def _legacy_tag_body() -> str | None:
    """anchore-cli without the swagger probe sends ``GET /images`` with a JSON body ``{"tag": …}``."""
    raw = current_event().get("body")
    if not raw:
        return None
    try:
        decoded = json.loads(raw)
    except ValueError:
        return None
    tag = decoded.get("tag") if isinstance(decoded, dict) else None
    return tag if isinstance(tag, str) and tag else None


def _json(status: HTTPStatus, body: Any) -> Response[str]:
    return Response(
        status_code=status.value, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


# ---- add, list, get, delete ---------------------------------------------------------------------------


def _platform(text: str) -> str:
    """A platform that can exist (``linux/arm64/v8``), or 400 naming what is wrong."""
    try:
        return str(parse_known_platform(text))
    except InvalidPlatformError as exc:
        raise InvalidPlatformError(f"platform: {exc}") from exc


def _registry_location(text: str, field: str) -> str:
    """Only registry images (a file source would make the service read its own filesystem), with a
    reference that can exist; the error names the request ``field`` at fault."""
    try:
        spec = SourceSpec.parse(text)
        if spec.kind is not SourceKind.REGISTRY or spec.reference is None:
            raise InvalidReferenceError(
                f"only registry images can be submitted, not {spec.kind.value} sources"
            )
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(f"{field}: {exc}") from exc
    return spec.location


def _start_without_resolving(
    current: Scope, body: ImageAnalysisRequest, force: bool, *, autosubscribe: bool
) -> Response[str]:
    """A host without registry access here (the AWS API function today) starts the state machine,
    which resolves the tag itself, and answers 202 with the execution. Subscriptions are keyed by
    the tag, not the digest: the tag's four are created here, by the same rule as on other hosts."""
    field, text = ("source", body.source) if isinstance(body.source, str) else ("tag", body.tag)
    if text is None:
        raise InvalidRequestError("this service takes a source string or a tag")
    location = _registry_location(text, field)
    reference = SourceSpec.parse(location).reference
    assert reference is not None
    request = AnalysisRequest(
        source=f"registry:{location}",
        platform=_platform(body.platform),
        repo_tag=reference.repo_tag if reference.tag else None,
        force=force,
    )
    start = current.need(current.deps.starter, "analysis starts").start(request)
    subscriptions = current.deps.subscriptions
    if request.repo_tag is not None and subscriptions is not None:
        ensure_tag_subscriptions(subscriptions, request.repo_tag, autosubscribe=autosubscribe)
    accepted = AnalysisAccepted(
        source=request.source,
        repo_tag=request.repo_tag,
        execution_arn=start.execution_id,
        started=start.started,
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body=accepted.model_dump_json(),
    )


@router.post(
    "/images",
    summary="Add an image for analysis (answers the image record)",
    tags=["images"],
    responses={
        200: {
            "description": "The image, in a list",
            "content": {"application/json": {"model": list[AnchoreImage]}},
        },
        202: {
            "description": "Analysis started (hosts that resolve later)",
            "content": {"application/json": {"model": AnalysisAccepted}},
        },
    },
)
def post_images(
    body: ImageAnalysisRequest,
    force: Annotated[bool, Query(description="Analyze again even if already analyzed")] = False,
    autosubscribe: Annotated[bool, Query(description="Activate the tag_update subscription")] = True,
) -> Response[str]:
    current = scope()
    deps = current.deps
    force = force or body.force
    if isinstance(body.source, ImageSourceRequest) and body.source.import_ is not None:
        record = _finish_import(current, body.source.import_, force=force, autosubscribe=autosubscribe)
        text = "[" + AnchoreImage.of(record, current.caller.account).model_dump_json(by_alias=True) + "]"
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=text)
    if deps.image_access is None:
        return _start_without_resolving(current, body, force, autosubscribe=autosubscribe)
    submission = _submission(body, force=force, autosubscribe=autosubscribe)
    record = submit_image(
        submission,
        account=current.caller.account,
        access=deps.image_access(current.caller.account),
        catalog=deps.catalog,
        subscriptions=deps.subscriptions,
        starter=current.need(deps.starter, "analysis starts"),
    )
    body_text = "[" + AnchoreImage.of(record, current.caller.account).model_dump_json(by_alias=True) + "]"
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body_text)


class ImportSource(_Request):
    """``source.import``: the operation and the digests of its uploaded parts."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    operation_uuid: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    parent_digest: str | None = None
    local_image_id: str | None = None
    tags: tuple[str, ...] = ()
    contents: dict[str, str | None]


def _finish_import(current: Scope, raw: dict[str, Any], *, force: bool, autosubscribe: bool) -> ImageRecord:
    """An imported SBOM becomes an analyzed image: analysis stored, matched and evaluated at once."""
    from portwarden.api.routes.imports import imports_of, pending_operation
    from portwarden.core.model.accounts import ImportStatus
    from portwarden.core.services.imports import analysis_from_import
    from portwarden.core.services.phases import evaluate_phase, match_phase

    request = parse_request_body(ImportSource, raw)
    assert isinstance(request, ImportSource)
    deps = current.deps
    store = imports_of(current)
    operation = pending_operation(store, request.operation_uuid)

    def part(kind: str) -> bytes | None:
        digest = request.contents.get(kind)
        if not digest:
            return None
        data = store.get_content(operation.uuid, kind, digest)
        if data is None:
            raise InvalidRequestError(f"no {kind} part {digest} was uploaded to {operation.uuid}")
        return data

    packages = part("packages")
    if packages is None:
        raise InvalidRequestError("contents.packages (the digest of the uploaded Syft document) is required")
    existing = deps.catalog.get_image(request.digest)
    if existing is not None and existing.analysis_status is AnalysisStatus.ANALYZED and not force:
        raise ConflictError(f"image {request.digest} is already analyzed; import again with force=true")
    image_id = f"sha256:{request.local_image_id}" if request.local_image_id else None
    analysis = analysis_from_import(
        packages,
        location=f"import {operation.uuid} packages",
        image_digest=request.digest,
        image_id=image_id,
        manifest=part("manifest"),
        image_config=part("image_config"),
        dockerfile=part("dockerfile"),
    )
    tags = tuple(full_tag(tag) for tag in request.tags)
    now = datetime.now(UTC)
    distro = analysis.distro
    deps.analyses.put_analysis(request.digest, analysis)
    deps.catalog.put_image(
        ImageRecord(
            image_digest=request.digest,
            image_id=image_id,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=tags,
            source=f"import:{operation.uuid}",
            platform=analysis.source.platform,
            distro=f"{distro.id}:{distro.version_id}" if distro else None,
            package_count=len(analysis.packages),
            created_at=existing.created_at if existing else now,
            analyzed_at=now,
            parent_digest=request.parent_digest,
        )
    )
    if deps.vulnerability_database is not None:
        match_phase(
            request.digest,
            tags[0] if tags else None,
            analyses=deps.analyses,
            database=deps.vulnerability_database,
        )
    if deps.policies is not None and deps.feeds is not None:
        from portwarden.core.triage.stored import stored_triage_inputs

        vex = stored_triage_inputs(deps.vex.list_documents()) if deps.vex is not None else None
        for tag in tags:
            evaluate_phase(
                request.digest,
                tag,
                analyses=deps.analyses,
                policies=deps.policies,
                evaluations=deps.evaluations,
                feeds=deps.feeds,
                vex=vex,
            )
    if deps.subscriptions is not None:
        for tag in tags:
            ensure_tag_subscriptions(deps.subscriptions, tag, autosubscribe=autosubscribe)
    store.put_operation(operation.model_copy(update={"status": ImportStatus.COMPLETE}))
    if deps.events is not None:
        from portwarden.core.services.events import record_event

        record_event(
            deps.events,
            "user.image.analysis.completed",
            message=f"SBOM import {operation.uuid} of {request.digest} completed",
            resource_type="image_digest",
            resource_id=request.digest,
            details={"package_count": len(analysis.packages), "imported": True},
        )
    record = deps.catalog.get_image(request.digest)
    if record is None:
        raise NotFoundError(f"image {request.digest} vanished from the catalog while being imported")
    return record


class _RenderedImages:
    """Each image record's JSON, remembered by the record object itself.

    Records are immutable, and a store that caches its listing (the local one does) hands out the
    same objects until something changes: rendering a listing of thousands of images is then a join.
    The record is kept beside its rendering, so an id is never mistaken for a later object's.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: dict[int, tuple[ImageRecord, str, str]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def render(self, record: ImageRecord, account: str) -> str:
        entry = self._entries.get(id(record))
        if entry is not None and entry[0] is record and entry[1] == account:
            return entry[2]
        rendered = AnchoreImage.of(record, account).model_dump_json(by_alias=True)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[id(record)] = (record, account, rendered)
        return rendered


_RENDERED = _RenderedImages()


@router.get(
    "/images",
    summary="List images",
    tags=["images"],
    responses={
        200: {"description": "The images", "content": {"application/json": {"model": list[AnchoreImage]}}}
    },
)
def list_images(
    fulltag: Annotated[str | None, Query(description="Only images with this full tag")] = None,
    history: Annotated[bool, Query(description="Include images the tag pointed to before")] = False,
    image_status: Annotated[str, Query(description="all, active or deleting")] = "active",
    analysis_status: Annotated[str | None, Query(description="Only images in this analysis status")] = None,
) -> Response[str]:
    current = scope()
    tag = fulltag or _legacy_tag_body()
    if analysis_status is not None and analysis_status not in {s.value for s in AnalysisStatus}:
        raise InvalidRequestError(f"unknown analysis_status {analysis_status!r}")
    if image_status not in ("all", "active", "deleting"):
        raise InvalidRequestError(f"unknown image_status {image_status!r}")
    if image_status == "deleting":
        # Deletion is immediate here: nothing is ever in "deleting".
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body="[]")
    catalog = current.deps.catalog
    if tag is None and analysis_status is not None:
        # The store's status index, not a filter over the newest images: every image in that status.
        records = catalog.list_images_by_status(AnalysisStatus(analysis_status), limit=MAX_LISTED_IMAGES)
    else:
        records = catalog.list_images(limit=MAX_LISTED_IMAGES)
    if tag is not None:
        wanted = full_tag(tag)
        records = [r for r in records if wanted in r.repo_tags]
        if not history:
            records = records[:1]
        if analysis_status is not None:
            records = [r for r in records if r.analysis_status.value == analysis_status]
    account = current.caller.account
    body = "[" + ",".join(_RENDERED.render(record, account) for record in records) + "]"
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@router.delete("/images", summary="Delete several images", tags=["images"])
def delete_images(
    imageDigests: Annotated[str, Query(description="Comma-separated digests")],
    force: bool = False,
) -> list[DeleteImageResponse]:
    current = scope()
    return [_delete(current, digest.strip(), force) for digest in imageDigests.split(",") if digest.strip()]


def _delete(current: Scope, digest: str, force: bool) -> DeleteImageResponse:
    record = current.deps.catalog.get_image(digest)
    if record is None:
        return DeleteImageResponse(digest=digest, status="not_found", detail="no such image")
    if record.analysis_status is AnalysisStatus.ANALYZING and not force:
        return DeleteImageResponse(
            digest=digest,
            status="delete_failed",
            detail="cannot delete an image being analyzed without force",
        )
    removal = getattr(current.deps.catalog, "delete_image", None)
    if removal is None:
        return DeleteImageResponse(digest=digest, status="delete_failed", detail="deletion is not supported")
    if record.analysis_status is AnalysisStatus.ANALYZING and record.claim_owner:
        # Forced: the analysis under way is stopped first, so that it neither keeps running for an
        # image nobody wants nor (its phases check the claim before writing) records it again.
        starter = current.deps.starter
        if isinstance(starter, AnalysisCancellation):
            starter.stop(record.claim_owner, f"image {digest} deleted with force")
    removal(digest)
    return DeleteImageResponse(digest=digest, status="deleting")


@router.get("/images/<digest>", summary="One image (a list of one)", tags=["images"])
def get_image(
    digest: DigestParam,
    history: bool = False,
) -> list[AnchoreImage]:
    current = scope()
    return [AnchoreImage.of(_image(current, digest), current.caller.account)]


@router.delete("/images/<digest>", summary="Delete an image and its analysis", tags=["images"])
def delete_image(digest: DigestParam, force: bool = False) -> DeleteImageResponse:
    current = scope()
    _image(current, digest)
    outcome = _delete(current, digest, force)
    if outcome.status == "delete_failed":
        raise ConflictError(outcome.detail or "cannot delete the image")
    return outcome


@router.get("/images/by_id/<image_id>", summary="One image by its image id", tags=["images"])
def get_image_by_id(image_id: str, history: bool = False) -> list[AnchoreImage]:
    current = scope()
    return [AnchoreImage.of(_by_image_id(current, image_id), current.caller.account)]


@router.delete("/images/by_id/<image_id>", summary="Delete an image by its image id", tags=["images"])
def delete_image_by_id(image_id: str, force: bool = False) -> DeleteImageResponse:
    current = scope()
    record = _by_image_id(current, image_id)
    outcome = _delete(current, record.image_digest, force)
    if outcome.status == "delete_failed":
        raise ConflictError(outcome.detail or "cannot delete the image")
    return outcome


@router.get("/summaries/imagetags", summary="Every tag with its image", tags=["images"])
def image_tag_summaries(image_status: str = "active") -> list[ImageTagSummary]:
    current = scope()
    summaries: list[ImageTagSummary] = []
    for record in current.deps.catalog.list_images(limit=MAX_LISTED_IMAGES):
        created = int(record.created_at.timestamp())
        for fulltag in record.repo_tags:
            summaries.append(
                ImageTagSummary(
                    image_digest=record.image_digest,
                    parent_digest=record.parent_digest or record.image_digest,
                    image_id=(record.image_id or "").removeprefix("sha256:") or None,
                    analysis_status=record.analysis_status.value,
                    fulltag=fulltag,
                    created_at=created,
                    analyzed_at=int(record.analyzed_at.timestamp()) if record.analyzed_at else None,
                    tag_detected_at=created,
                )
            )
    return summaries


# ---- content and metadata -----------------------------------------------------------------------------


@router.get("/images/<digest>/content", summary="Content types available", tags=["images"])
def list_content_types(digest: DigestParam) -> list[str]:
    _image(scope(), digest)
    return list(CONTENT_TYPES)


@router.get("/images/<digest>/content/<ctype>", summary="One content type of an image", tags=["images"])
def get_content(digest: DigestParam, ctype: str) -> dict[str, Any]:
    current = scope()
    if ctype in METADATA_TYPES:
        record, analysis = _analyzed(current, digest)
        return {
            "imageDigest": digest,
            "content_type": ctype,
            "content": metadata_document(analysis, record, ctype),
        }
    if ctype not in CONTENT_TYPES:
        raise NotFoundError(f"unknown content type {ctype!r}; one of {', '.join(CONTENT_TYPES)}")
    _, analysis = _analyzed(current, digest)
    content: list[dict[str, Any]]
    if ctype == "files":
        content = file_rows(analysis)
    elif ctype == "malware":
        # No malware scanner runs here: said so, rather than a clean result.
        content = [{"scanner": "clamav", "enabled": False, "metadata": {}, "findings": []}]
    else:
        content = package_rows(analysis, ctype)
    return {"imageDigest": digest, "content_type": ctype, "content": content}


@router.get("/images/<digest>/metadata", summary="Metadata types available", tags=["images"])
def list_metadata_types(digest: DigestParam) -> list[str]:
    _image(scope(), digest)
    return list(METADATA_TYPES)


@router.get("/images/<digest>/metadata/<mtype>", summary="Manifest, history or Dockerfile", tags=["images"])
def get_metadata(digest: DigestParam, mtype: str) -> dict[str, Any]:
    current = scope()
    if mtype not in METADATA_TYPES:
        raise NotFoundError(f"unknown metadata type {mtype!r}; one of {', '.join(METADATA_TYPES)}")
    record, analysis = _analyzed(current, digest)
    return {
        "imageDigest": digest,
        "metadata_type": mtype,
        "metadata": metadata_document(analysis, record, mtype),
    }


# ---- vulnerabilities ---------------------------------------------------------------------------------


@router.get("/images/<digest>/vuln", summary="Vulnerability report types", tags=["images"])
def list_vulnerability_types(digest: DigestParam) -> list[str]:
    _image(scope(), digest)
    return ["os", "non-os", "all"]


def _matches(current: Scope, digest: str) -> tuple[ImageRecord, list[Match]]:
    """The image and its stored matches (404s: not analyzed, or not matched yet)."""
    record = _image(current, digest)
    if record.analysis_status is not AnalysisStatus.ANALYZED:
        raise NotFoundError(f"image is not analyzed - analysis_status: {record.analysis_status.value}")
    matches = current.deps.analyses.get_matches(digest)
    if matches is None:
        # Before the first feed sync an analyzed image has no matches: never an empty (clean-looking)
        # report.
        raise NotFoundError(
            f"image {digest} has not been matched against vulnerability data yet (sync the feeds)"
        )
    return record, matches


def triage_inputs(current: Scope) -> TriageInputs:
    """The account's stored VEX statements (none on a host without a VEX store)."""
    from portwarden.core.triage.stored import stored_triage_inputs

    store = current.deps.vex
    return stored_triage_inputs(store.list_documents()) if store is not None else TriageInputs()


def _triaged(
    current: Scope,
    record: ImageRecord,
    matches: list[Match],
    inputs: TriageInputs,
    *,
    repo_tag: str | None,
    analysis: ImageAnalysis | None = None,
) -> TriageOutcome:
    """The matches with the account's VEX statements applied (read only when there are statements:
    the analysis is needed to know which products name this image)."""
    if inputs.empty:
        return TriageOutcome(matches=tuple(matches))
    from portwarden.core.triage.apply import apply_triage

    if analysis is None:
        analysis = current.deps.analyses.get_analysis(record.image_digest)
        if analysis is None:
            raise NotFoundError(f"image {record.image_digest} has no stored analysis")
    return apply_triage(analysis, matches, inputs, today=datetime.now(UTC).date(), repo_tag=repo_tag)


@router.get(
    "/images/<digest>/vuln/explain",
    summary="Why the image has (or has not) a vulnerability, from the evidence",
    tags=["images"],
    responses={
        200: {
            "description": "Each match of the vulnerability with its evidence, and the policy rows about it",
            "content": {"application/json": {"model": Explanation}},
        }
    },
)
def explain_image_vulnerability(
    digest: DigestParam,
    id: Annotated[
        str, Query(min_length=1, description="The vulnerability: its id or an alias (CVE-…, GHSA-…)")
    ],
    tag: Annotated[str | None, Query(description="The tag to explain the policy rows for")] = None,
    policyId: Annotated[str | None, Query(description="A bundle other than the active one")] = None,
) -> Response[str]:
    # Registered before /vuln/<vuln_type>: routes with parameters are tried in the order they are added.
    current = scope()
    record, analysis = _analyzed(current, digest)
    _, matches = _matches(current, digest)
    opened = current.need(current.deps.vulnerability_database, "a vulnerability database")()
    if opened is None:
        raise NotFoundError("no vulnerability database yet (sync the feeds)")
    repo_tag = full_tag(tag) if tag else (record.repo_tags[0] if record.repo_tags else None)
    if tag and repo_tag not in record.repo_tags:
        raise NotFoundError(f"image {digest} is not tagged {repo_tag}")
    from portwarden.core.services.explain import explain_vulnerability

    explanation = explain_vulnerability(
        analysis,
        opened.matcher.db,
        id,
        triage=triage_inputs(current),
        bundle=_bundle(current, policyId),
        repo_tag=repo_tag,
        matches=matches,
    )
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=explanation.model_dump_json()
    )


def _bundle(current: Scope, policy_id: str | None) -> PolicyBundle:
    """The bundle asked for, else the account's active one, else the default bundle."""
    from portwarden.core.policy.default import default_bundle
    from portwarden.core.services.evaluate import parse_bundle

    policies = current.deps.policies
    if policy_id is not None:
        stored = policies.get_bundle(policy_id) if policies is not None else None
        if stored is None:
            raise NotFoundError(f"policy bundle {policy_id} not found")
        return parse_bundle(stored.document)
    active = policies.active_bundle() if policies is not None else None
    return parse_bundle(active.document) if active is not None else default_bundle()


@router.get(
    "/images/<digest>/vuln/<vuln_type>",
    summary="Vulnerabilities of an analyzed image",
    tags=["images"],
    responses={
        200: {
            "description": "Anchore's report; `suppressed` lists what the account's VEX statements suppress",
            "content": {"application/json": {"model": VulnerabilityReport}},
        }
    },
)
def get_vulnerabilities(
    digest: DigestParam,
    vuln_type: Annotated[Literal["os", "non-os", "all"], Path(description="os, non-os or all")],
    vendor_only: Annotated[bool, Query(description="Hide matches the vendor will not fix")] = True,
    force_refresh: bool = False,
    include_suppressed: Annotated[
        bool, Query(description="List the matches the account's VEX statements suppress under `suppressed`")
    ] = True,
) -> Response[str]:
    current = scope()
    record, matches = _matches(current, digest)
    if vuln_type == "os":
        matches = [m for m in matches if m.package.type in OS_PACKAGE_TYPES]
    elif vuln_type == "non-os":
        matches = [m for m in matches if m.package.type not in OS_PACKAGE_TYPES]
    if vendor_only:
        matches = [m for m in matches if m.fix.state is not FixState.WONT_FIX]
    outcome = _triaged(
        current,
        record,
        matches,
        triage_inputs(current),
        repo_tag=record.repo_tags[0] if record.repo_tags else None,
    )
    suppressed = [
        SuppressedVulnerability(
            **AnchoreVulnerability.of(item.match).model_dump(),
            suppressed_by=[
                reason.model_dump(mode="json", exclude_none=True) for reason in item.suppressed_by
            ],
        )
        for item in outcome.suppressed
    ]
    report = VulnerabilityReport(
        image_digest=digest,
        vulnerability_type=vuln_type,
        vulnerabilities=[AnchoreVulnerability.of(match) for match in outcome.matches],
        suppressed=suppressed if include_suppressed else None,
    )
    # `suppressed` is left out, not null, when not asked for.
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=report.model_dump_json(
            by_alias=True, exclude={"suppressed"} if not include_suppressed else None
        ),
    )


# ---- policy check ----------------------------------------------------------------------------------


def _evaluation(
    current: Scope, record: ImageRecord, tag: str, policy_id: str | None
) -> tuple[EvaluationRecord, PolicyEvaluation, dict[str, Any]]:
    """The evaluation of the image for ``tag`` with the bundle asked for (the active one by default).

    A stored evaluation is reused while it is newer than the bundle and the analysis; otherwise the
    engine runs again and the new evaluation is stored. The analysis (the largest document an image
    has) is read only then.
    """
    # The policy engine loads with the first check, not with the API.
    from portwarden.core.policy.default import default_bundle
    from portwarden.core.services.evaluate import evaluate, evaluation_input, evaluation_record, parse_bundle

    policies = current.deps.policies
    stored_bundle = None
    if policy_id is not None:
        stored_bundle = policies.get_bundle(policy_id) if policies is not None else None
        if stored_bundle is None:
            raise NotFoundError(f"policy bundle {policy_id} not found")
    elif policies is not None:
        stored_bundle = policies.active_bundle()
    bundle = parse_bundle(stored_bundle.document) if stored_bundle is not None else default_bundle()
    inputs = triage_inputs(current)
    vex_revision = current.deps.vex.revision() if current.deps.vex is not None else None
    # With VEX statements the engine always runs (the worker's evaluation after an analysis does not
    # apply them); without, a stored evaluation counts if newer than the last VEX change.
    for previous in current.deps.evaluations.list_evaluations(record.image_digest) if inputs.empty else ():
        fresh_after = max(
            stored_bundle.updated_at if stored_bundle else datetime.min.replace(tzinfo=UTC),
            record.analyzed_at or datetime.min.replace(tzinfo=UTC),
            vex_revision or datetime.min.replace(tzinfo=UTC),
        )
        if (
            previous.repo_tag == tag
            and previous.bundle_id == bundle.id
            and previous.evaluated_at >= fresh_after
        ):
            evaluation = PolicyEvaluation.model_validate(previous.document)
            return previous, evaluation, bundle.document()
        break  # only the newest one can be current
    analysis = _stored_analysis(current, record.image_digest)
    matches = current.deps.analyses.get_matches(record.image_digest)
    # The vulnerabilities gate counts only what the account's VEX statements leave reported.
    reported = _triaged(current, record, matches or [], inputs, repo_tag=tag, analysis=analysis).matches
    pointer = current.deps.feeds.get_db_pointer() if current.deps.feeds is not None else None
    data = evaluation_input(
        analysis,
        reported,
        now=datetime.now(UTC),
        repo_tag=tag,
        db_built_at=pointer.built_at if pointer else None,
        vulnerability_data_available=matches is not None,
        dockerfile=record.dockerfile,
    )
    evaluation = evaluate(bundle, data)
    stored = evaluation_record(evaluation)
    current.deps.evaluations.put_evaluation(stored)
    return stored, evaluation, bundle.document()


@router.get("/images/<digest>/check", summary="Policy evaluation of an image for a tag", tags=["images"])
def get_check(
    digest: DigestParam,
    tag: Annotated[str | None, Query(description="The tag to evaluate the image as")] = None,
    policyId: Annotated[str | None, Query(description="A bundle other than the active one")] = None,
    detail: bool = True,
    history: bool = False,
    interactive: bool = False,
) -> list[dict[str, dict[str, list[dict[str, Any]]]]]:
    current = scope()
    record = _analyzed_record(current, digest)
    if tag is None:
        if not record.repo_tags:
            raise InvalidRequestError("tag is required: this image has no tag to evaluate it as")
        tag = record.repo_tags[0]
    wanted = full_tag(tag)
    if wanted not in record.repo_tags:
        raise NotFoundError(f"image {digest} is not tagged {wanted}")
    account = current.caller.account
    stored, evaluation, bundle_document = _evaluation(current, record, wanted, policyId)
    checks = [_check_entry(stored, evaluation, bundle_document, account, detail)]
    if history:
        for previous in current.deps.evaluations.list_evaluations(digest):
            if previous.evaluation_id != stored.evaluation_id and previous.repo_tag == wanted:
                past = PolicyEvaluation.model_validate(previous.document)
                checks.append(_check_entry(previous, past, bundle_document, account, detail))
    # Keyed by the digest exactly as the client asked for it (it looks its answer up by that key).
    return [{digest: {tag: checks}}]


def _check_entry(
    stored: EvaluationRecord,
    evaluation: PolicyEvaluation,
    bundle_document: dict[str, Any],
    account: str,
    detail: bool,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": stored.status,
        "policyId": stored.bundle_id,
        "last_evaluation": iso(stored.evaluated_at),
        "final_action": stored.final_action,
        "final_action_reason": evaluation.final_action_reason.value,
        "evaluation_id": stored.evaluation_id,
    }
    if detail:
        entry["detail"] = evaluation_detail(evaluation, bundle_document, account)
    return entry


# ---- artifacts and SBOMs ------------------------------------------------------------------------------


@router.get(
    "/images/<digest>/artifacts/retrieved_files", summary="Files kept by the analysis", tags=["images"]
)
def get_retrieved_files(digest: DigestParam) -> list[dict[str, Any]]:
    _, analysis = _analyzed(scope(), digest)
    return [
        {"path": item.path, "b64_content": item.content_b64, "size": item.size, "truncated": item.truncated}
        for item in analysis.retrieved_files
    ]


def _grouped(findings: Any) -> list[dict[str, Any]]:
    by_path: dict[str, dict[str, list[int]]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, {}).setdefault(finding.name, []).append(finding.line)
    return [
        {
            "path": path,
            "matches": [{"name": name, "regex": name, "lines": lines} for name, lines in names.items()],
        }
        for path, names in sorted(by_path.items())
    ]


@router.get("/images/<digest>/artifacts/file_content_search", summary="Content search hits", tags=["images"])
def get_content_search(digest: DigestParam) -> list[dict[str, Any]]:
    _, analysis = _analyzed(scope(), digest)
    return _grouped(analysis.content_matches)


@router.get("/images/<digest>/artifacts/secret_search", summary="Secret search hits", tags=["images"])
def get_secret_search(digest: DigestParam) -> list[dict[str, Any]]:
    _, analysis = _analyzed(scope(), digest)
    return _grouped(analysis.secrets)


def get_native_sbom(digest: DigestParam) -> Response[bytes]:
    from portwarden.core.sbom import encode

    _, analysis = _analyzed(scope(), digest)
    return Response(
        status_code=200,
        content_type="application/gzip",
        body=gzip.compress(encode(analysis, "json").encode()),
    )


# Powertools validates a declared return type as JSON; a binary body has to pass through as it is.
del get_native_sbom.__annotations__["return"]
router.get("/images/<digest>/sboms/native", summary="The native analysis, gzipped", tags=["images"])(
    get_native_sbom
)


@router.get("/images/<digest>/sboms/<sbom_format>", summary="CycloneDX or SPDX JSON", tags=["images"])
def get_sbom(digest: DigestParam, sbom_format: str) -> Response[str]:
    from portwarden.core.sbom import encode

    formats = {"cyclonedx-json": "cyclonedx-json", "spdx-json": "spdx-json", "native-json": "json"}
    if sbom_format not in formats:
        raise NotFoundError(f"unknown SBOM format {sbom_format!r}; one of native, {', '.join(formats)}")
    _, analysis = _analyzed(scope(), digest)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=encode(analysis, formats[sbom_format]),
    )


def parse_request_body(model: type[ValueObject], raw: Any) -> ValueObject:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequestError(str(exc)) from exc
