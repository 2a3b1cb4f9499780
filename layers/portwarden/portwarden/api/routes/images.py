"""Images: submit for analysis, list, get, vulnerabilities, policy check (Anchore's ``/images`` family).

Shapes follow Anchore Engine's v1 API where clients read them (``imageDigest``, ``analysis_status``,
the vulnerability report, the check result keyed by digest and tag). Submitting starts an analysis
asynchronously and answers ``202``; the image appears in the catalog once Resolve has run.

The routes reach the stores and the analysis starter through ``ImageServices``. The Lambda function
gets them from ``portwarden.runtime.wiring`` on first use; another host (``portwarden serve``, tests)
installs its own with :func:`use_services`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal, Protocol

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field, model_validator

from portwarden.adapters.aws.sfn import ExecutionStart
from portwarden.core.errors import InvalidReferenceError, NotFoundError, StoreError
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.records import AnalysisStatus, EvaluationRecord, ImageRecord
from portwarden.core.model.vulnerability import FixState
from portwarden.core.ports import AnalysisStore, CatalogStore, EvaluationStore
from portwarden.core.services.acquire import DEFAULT_PLATFORM
from portwarden.core.services.pipeline import AnalysisRequest

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
MAX_LISTED_IMAGES = 1000

# Anchore's package type names, and which of them are OS packages ("os" vs "non-os" reports).
_ANCHORE_PACKAGE_TYPES = {
    "deb": "dpkg",
    "apk": "apkg",
    "rpm": "rpm",
    "java-archive": "java",
    "go-module": "go",
    "rust-crate": "rust",
    "php-composer": "composer",
    "dotnet": "nuget",
}
_OS_PACKAGE_TYPES = frozenset({"deb", "apk", "rpm"})


# ---- dependencies -----------------------------------------------------------------------------------


class AnalysisStarter(Protocol):
    def start(self, request: AnalysisRequest, *, name: str | None = None) -> ExecutionStart: ...


@dataclass(frozen=True)
class ImageServices:
    catalog: CatalogStore
    analyses: AnalysisStore
    evaluations: EvaluationStore
    # None where analyses cannot be started (a read-only host): submitting then fails with 500.
    starter: AnalysisStarter | None = None


def _lambda_services() -> ImageServices:
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.runtime import wiring

    stores = wiring.stores()
    arn = wiring.api_settings().state_machine_arn
    return ImageServices(
        catalog=stores.catalog,
        analyses=stores.analyses,
        evaluations=stores.evaluations,
        starter=StepFunctionsStarter(arn) if arn else None,
    )


_provider: Callable[[], ImageServices] = _lambda_services
_services: ImageServices | None = None


def use_services(provider: Callable[[], ImageServices] | None) -> None:
    """Serve the routes from ``provider`` (called once, on first use); None restores the Lambda wiring."""
    global _provider, _services
    _provider = provider or _lambda_services
    _services = None


def services() -> ImageServices:
    global _services
    if _services is None:
        _services = _provider()
    return _services


# ---- bodies -----------------------------------------------------------------------------------------


class _ApiModel(ValueObject):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ImageAnalysisRequest(_ApiModel):
    """What to analyze: ``source`` (``registry:REF`` or a bare reference) or Anchore's ``tag``."""

    source: str | None = Field(default=None, description="registry:REF, or a bare image reference")
    tag: str | None = Field(
        default=None, description="Anchore's spelling: a pull string such as docker.io/nginx:1.27"
    )
    platform: str = DEFAULT_PLATFORM
    force: bool = Field(default=False, description="Analyze again even when the digest is already analyzed")

    @model_validator(mode="after")
    def _one_source(self) -> ImageAnalysisRequest:
        if (self.source is None) == (self.tag is None):
            raise ValueError("give exactly one of source and tag")
        return self


class AnalysisAccepted(_ApiModel):
    source: str
    repo_tag: str | None = None
    execution_arn: str
    # False when an identical request had already started this execution.
    started: bool


class ImageDetail(_ApiModel):
    fulltag: str


class AnchoreImage(_ApiModel):
    image_digest: str = Field(alias="imageDigest")
    image_id: str | None = Field(default=None, alias="imageId")
    analysis_status: AnalysisStatus
    image_status: Literal["active"] = "active"
    image_detail: tuple[ImageDetail, ...] = ()
    source: str | None = None
    platform: str | None = None
    distro: str | None = None
    package_count: int = 0
    created_at: datetime
    analyzed_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def of(cls, record: ImageRecord) -> AnchoreImage:
        return cls(
            image_digest=record.image_digest,
            image_id=record.image_id,
            analysis_status=record.analysis_status,
            image_detail=tuple(ImageDetail(fulltag=tag) for tag in record.repo_tags),
            source=record.source,
            platform=record.platform,
            distro=record.distro,
            package_count=record.package_count,
            created_at=record.created_at,
            analyzed_at=record.analyzed_at,
            last_error=record.last_error,
        )


class CvssData(_ApiModel):
    id: str
    version: str
    vector: str
    base_score: float | None = None


class AnchoreVulnerability(_ApiModel):
    """One row of Anchore's vulnerability report."""

    vuln: str
    severity: str
    package: str
    package_name: str
    package_version: str
    package_type: str
    package_path: str | None = None
    fix: str
    will_not_fix: bool
    url: str | None = None
    feed: str
    feed_group: str
    nvd_data: tuple[CvssData, ...] = ()
    vendor_data: tuple[CvssData, ...] = ()

    @classmethod
    def of(cls, match: Match) -> AnchoreVulnerability:
        package = match.package
        nvd = tuple(
            CvssData(id=match.id, version=c.version, vector=c.vector, base_score=c.score)
            for c in match.cvss
            if (c.source or "").lower() == "nvd"
        )
        vendor = tuple(
            CvssData(id=match.id, version=c.version, vector=c.vector, base_score=c.score)
            for c in match.cvss
            if (c.source or "").lower() != "nvd"
        )
        return cls(
            vuln=match.id,
            severity=match.severity.value,
            package=f"{package.name}-{package.version}",
            package_name=package.name,
            package_version=package.version,
            package_type=_ANCHORE_PACKAGE_TYPES.get(package.type, package.type),
            package_path=package.location,
            fix=", ".join(match.fix.versions) if match.fix.versions else "None",
            will_not_fix=match.fix.state is FixState.WONT_FIX,
            url=match.urls[0] if match.urls else None,
            feed=match.matched_by.matcher,
            feed_group=match.namespace,
            nvd_data=nvd,
            vendor_data=vendor,
        )


class VulnerabilityReport(_ApiModel):
    image_digest: str = Field(alias="imageDigest")
    vulnerability_type: str
    vulnerabilities: tuple[AnchoreVulnerability, ...]


class PolicyCheck(_ApiModel):
    status: str
    policy_id: str = Field(alias="policyId")
    final_action: str
    last_evaluation: datetime
    evaluation_id: str
    detail: dict[str, Any] | None = None

    @classmethod
    def of(cls, record: EvaluationRecord, *, detail: bool) -> PolicyCheck:
        return cls(
            status=record.status,
            policy_id=record.bundle_id,
            final_action=record.final_action,
            last_evaluation=record.evaluated_at,
            evaluation_id=record.evaluation_id,
            detail={"result": record.document} if detail else None,
        )


# ---- routes -----------------------------------------------------------------------------------------

DigestParam = Annotated[str, Path(pattern=DIGEST_PATTERN, description="Manifest digest (sha256:...)")]


def _registry_request(body: ImageAnalysisRequest) -> AnalysisRequest:
    """Only registry images: a file source would make the function read its own filesystem."""
    text = body.source if body.source is not None else body.tag
    assert text is not None  # the body validator guarantees one of them
    spec = SourceSpec.parse(text)
    if spec.kind is not SourceKind.REGISTRY or spec.reference is None:
        raise InvalidReferenceError(f"only registry images can be submitted, not {spec.kind.value} sources")
    reference = spec.reference
    return AnalysisRequest(
        source=f"registry:{spec.location}",
        platform=body.platform,
        repo_tag=f"{reference.registry}/{reference.repository}:{reference.tag}" if reference.tag else None,
        force=body.force,
    )


@router.post("/images", summary="Submit an image for analysis", tags=["images"])
def post_images(body: ImageAnalysisRequest) -> Response[AnalysisAccepted]:
    request = _registry_request(body)
    starter = services().starter
    if starter is None:
        raise StoreError("this service cannot start analyses (no state machine is configured)")
    start = starter.start(request)
    accepted = AnalysisAccepted(
        source=request.source,
        repo_tag=request.repo_tag,
        execution_arn=start.execution_arn,
        started=start.started,
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body=accepted,
    )


@router.get("/images", summary="List images, newest first", tags=["images"])
def list_images(
    analysis_status: Annotated[AnalysisStatus | None, Query(description="Only images in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED_IMAGES)] = 100,
) -> list[AnchoreImage]:
    catalog = services().catalog
    if analysis_status is not None:
        records = catalog.list_images_by_status(analysis_status, limit=limit)  # the by_status index
    else:
        records = catalog.list_images(limit=limit)
    return [AnchoreImage.of(record) for record in records]


def _image(digest: str) -> ImageRecord:
    record = services().catalog.get_image(digest)
    if record is None:
        raise NotFoundError(f"no image {digest}")
    return record


@router.get("/images/<digest>", summary="One image (a list of one, as Anchore answers)", tags=["images"])
def get_image(digest: DigestParam) -> list[AnchoreImage]:
    return [AnchoreImage.of(_image(digest))]


@router.get(
    "/images/<digest>/vuln/<vuln_type>", summary="Vulnerabilities of an analyzed image", tags=["images"]
)
def get_image_vulnerabilities(
    digest: DigestParam,
    vuln_type: Annotated[Literal["os", "non-os", "all"], Path(description="os, non-os or all")],
) -> VulnerabilityReport:
    record = _image(digest)
    if record.analysis_status is not AnalysisStatus.ANALYZED:
        raise NotFoundError(f"image {digest} is {record.analysis_status.value}, not analyzed")
    matches = services().analyses.get_matches(digest)
    if matches is None:
        raise NotFoundError(f"image {digest} has not been matched against vulnerability data yet")
    if vuln_type == "os":
        matches = [m for m in matches if m.package.type in _OS_PACKAGE_TYPES]
    elif vuln_type == "non-os":
        matches = [m for m in matches if m.package.type not in _OS_PACKAGE_TYPES]
    return VulnerabilityReport(
        image_digest=digest,
        vulnerability_type=vuln_type,
        vulnerabilities=tuple(AnchoreVulnerability.of(match) for match in matches),
    )


@router.get("/images/<digest>/check", summary="The latest policy evaluation of an image", tags=["images"])
def get_image_check(
    digest: DigestParam,
    tag: Annotated[str | None, Query(description="The evaluation made for this tag")] = None,
    detail: Annotated[bool, Query(description="Include the evaluation document")] = True,
) -> list[dict[str, dict[str, list[PolicyCheck]]]]:
    _image(digest)
    record = services().evaluations.latest_evaluation(digest, tag)
    if record is None:
        raise NotFoundError(f"image {digest} has no policy evaluation" + (f" for {tag}" if tag else ""))
    return [{digest: {record.repo_tag or tag or digest: [PolicyCheck.of(record, detail=detail)]}}]
