"""Anchore Engine v1 bodies, built from Portwarden's records.

Field names, list-vs-object and types follow Anchore wherever a client reads them (see the
``anchore-cli`` contract in the docs): timestamps are ISO-8601 strings with a ``Z``, ``nvd_data`` is
always a list, the vulnerability ``fix`` is the literal ``"None"`` when there is none.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field

from portwarden.core.ecosystems import ECOSYSTEMS
from portwarden.core.model.accounts import (
    AccountRecord,
    RegistryRecord,
    SubscriptionRecord,
    UserRecord,
)
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.policy import PolicyEvaluation
from portwarden.core.model.records import EventRecord, ImageRecord, StoredBundle
from portwarden.core.model.vulnerability import FixState

# From the ecosystem descriptors: Anchore's name of each package type ("deb" → "dpkg"), which types
# are OS packages ("os" vs "non-os" reports), and the content type each is listed under (OS packages
# all under "os").
ANCHORE_PACKAGE_TYPES = {e.package_type.value: e.anchore_type for e in ECOSYSTEMS.values()}
OS_PACKAGE_TYPES = frozenset(e.package_type.value for e in ECOSYSTEMS.values() if e.os_package)
CONTENT_PACKAGE_TYPES: dict[str, frozenset[str]] = {"os": OS_PACKAGE_TYPES} | {
    e.anchore_type: frozenset({e.package_type.value}) for e in ECOSYSTEMS.values() if not e.os_package
}
CONTENT_TYPES = ("os", "files", "npm", "gem", "python", "java", "go", "binary", "nuget", "rust", "malware")
METADATA_TYPES = ("manifest", "docker_history", "dockerfile")
VULNERABILITY_TYPES = ("os", "non-os", "all")


def iso(value: datetime | None) -> str | None:
    """``2026-03-01T12:00:00Z``: what dateutil and Anchore's clients parse."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Body(ValueObject):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# ---- images ---------------------------------------------------------------------------------------


class ImageDetail(Body):
    registry: str
    repo: str
    tag: str
    fulltag: str
    digest: str
    fulldigest: str
    image_id: str | None = Field(default=None, alias="imageId")
    image_digest: str = Field(alias="imageDigest")
    dockerfile: str | None = None
    created_at: str | None
    last_updated: str | None
    tag_detected_at: str | None
    user_id: str = Field(alias="userId")


class ImageMetadataSummary(Body):
    arch: str | None = None
    distro: str | None = None
    distro_version: str | None = None
    dockerfile_mode: str | None = None
    image_size: int | None = None
    layer_count: int | None = None


class ImageContent(Body):
    metadata: ImageMetadataSummary | dict[str, Any] = Field(default_factory=dict)


class AnchoreImage(Body):
    image_digest: str = Field(alias="imageDigest")
    parent_digest: str | None = Field(default=None, alias="parentDigest")
    analysis_status: str
    image_status: str = "active"
    image_type: str = "docker"
    analyzed_at: str | None
    created_at: str | None
    last_updated: str | None
    user_id: str = Field(alias="userId")
    record_version: str = "v1"
    annotations: dict[str, str] = Field(default_factory=dict)
    image_detail: list[ImageDetail]
    image_content: ImageContent
    last_error: str | None = None

    @classmethod
    def of(cls, record: ImageRecord, account: str) -> AnchoreImage:
        created = iso(record.created_at)
        details: list[ImageDetail] = []
        for fulltag in record.repo_tags:
            registry, _, rest = fulltag.partition("/")
            repo, _, tag = rest.rpartition(":")
            details.append(
                ImageDetail(
                    registry=registry,
                    repo=repo,
                    tag=tag,
                    fulltag=fulltag,
                    digest=record.image_digest,
                    fulldigest=f"{registry}/{repo}@{record.image_digest}",
                    image_id=_bare(record.image_id),
                    image_digest=record.image_digest,
                    dockerfile=_b64(record.dockerfile) if record.dockerfile else None,
                    created_at=created,
                    last_updated=iso(record.analyzed_at) or created,
                    tag_detected_at=created,
                    user_id=account,
                )
            )
        metadata: ImageMetadataSummary | dict[str, Any] = {}
        if record.analysis_status == "analyzed":
            distro, _, version = (record.distro or "").partition(":")
            metadata = ImageMetadataSummary(
                arch=record.arch,
                distro=distro or None,
                distro_version=version or None,
                dockerfile_mode="Actual" if record.dockerfile else "Guessed",
                image_size=record.image_size,
                layer_count=record.layer_count,
            )
        return cls(
            image_digest=record.image_digest,
            parent_digest=record.parent_digest or record.image_digest,
            analysis_status=record.analysis_status.value,
            analyzed_at=iso(record.analyzed_at),
            created_at=created,
            last_updated=iso(record.analyzed_at) or created,
            user_id=account,
            annotations=record.annotations,
            image_detail=details,
            image_content=ImageContent(metadata=metadata),
            last_error=record.last_error,
        )


def _bare(digest: str | None) -> str | None:
    """Anchore's imageId is the config digest's hex part (a docker image id)."""
    return digest.split(":", 1)[1] if digest and ":" in digest else digest


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


class ImageTagSummary(Body):
    image_digest: str = Field(alias="imageDigest")
    parent_digest: str | None = Field(default=None, alias="parentDigest")
    image_id: str | None = Field(default=None, alias="imageId")
    analysis_status: str
    image_status: str = "active"
    fulltag: str
    created_at: int
    analyzed_at: int | None
    tag_detected_at: int


class DeleteImageResponse(Body):
    digest: str
    status: str
    detail: str | None = None


# ---- vulnerabilities --------------------------------------------------------------------------------


class CvssScores(Body):
    base_score: float = -1.0
    exploitability_score: float = -1.0
    impact_score: float = -1.0


class CvssData(Body):
    id: str
    cvss_v2: CvssScores = Field(default_factory=CvssScores)
    cvss_v3: CvssScores = Field(default_factory=CvssScores)


class AnchoreVulnerability(Body):
    vuln: str
    severity: str
    package: str
    package_name: str
    package_version: str
    package_type: str
    package_path: str
    package_cpe: str = "None"
    package_cpe23: str = "None"
    fix: str
    will_not_fix: bool
    url: str
    feed: str
    feed_group: str
    nvd_data: list[CvssData]
    vendor_data: list[CvssData]

    @classmethod
    def of(cls, match: Match) -> AnchoreVulnerability:
        package = match.package
        is_os = package.type in OS_PACKAGE_TYPES
        return cls(
            vuln=match.id,
            severity=match.severity.value,
            package=f"{package.name}-{package.version}",
            package_name=package.name,
            package_version=package.version,
            package_type=ANCHORE_PACKAGE_TYPES.get(package.type, package.type),
            package_path="pkgdb" if is_os else (package.location or "None"),
            fix=", ".join(match.fix.versions) if match.fix.versions else "None",
            will_not_fix=match.fix.state is FixState.WONT_FIX,
            url=match.urls[0] if match.urls else "None",
            feed="vulnerabilities" if is_os else "nvdv2",
            feed_group=match.namespace,
            nvd_data=_cvss(match, nvd=True),
            vendor_data=_cvss(match, nvd=False),
        )


def _cvss(match: Match, *, nvd: bool) -> list[CvssData]:
    v2 = CvssScores()
    v3 = CvssScores()
    found = False
    for score in match.cvss:
        if ((score.source or "").lower().startswith("nvd")) != nvd or score.score is None:
            continue
        found = True
        if score.version.startswith("2"):
            v2 = CvssScores(base_score=score.score)
        elif score.version.startswith("3") and v3.base_score < 0:
            v3 = CvssScores(base_score=score.score)
    return [CvssData(id=match.id, cvss_v2=v2, cvss_v3=v3)] if found else []


class VulnerabilityReport(Body):
    image_digest: str = Field(alias="imageDigest")
    vulnerability_type: str
    vulnerabilities: list[AnchoreVulnerability]


# ---- content and metadata ---------------------------------------------------------------------------


def package_rows(analysis: ImageAnalysis, content_type: str) -> list[dict[str, Any]]:
    """Anchore's content rows for one package content type."""
    if content_type == "binary":
        packages = [p for p in analysis.packages if "binary" in p.found_by]
    else:
        kinds = CONTENT_PACKAGE_TYPES[content_type]
        packages = [p for p in analysis.packages if p.type.value in kinds]
    rows: list[dict[str, Any]] = []
    for package in packages:
        location = package.locations[0].path if package.locations else ""
        row: dict[str, Any] = {
            "package": package.name,
            "version": package.version,
            "size": str(package.metadata.get("installed_size", "N/A")),
            "type": ANCHORE_PACKAGE_TYPES.get(package.type.value, package.type.value).upper()
            if content_type == "os"
            else ANCHORE_PACKAGE_TYPES.get(package.type.value, package.type.value),
            "origin": str(package.metadata.get("maintainer") or package.metadata.get("author") or "N/A"),
            "licenses": list(package.licenses) or ["Unknown"],
            "license": " ".join(package.licenses) or "Unknown",
            "location": "pkgdb" if content_type == "os" else location,
            "cpes": list(package.cpes),
            "purl": package.purl or "",
        }
        if content_type == "java":
            version = package.version
            row["specification-version"] = str(package.metadata.get("specification_version") or "N/A")
            row["implementation-version"] = str(package.metadata.get("implementation_version") or version)
            row["maven-version"] = version
        rows.append(row)
    return rows


def file_rows(analysis: ImageAnalysis) -> list[dict[str, Any]]:
    return [
        {
            "filename": entry.path,
            "gid": entry.gid,
            "uid": entry.uid,
            "mode": entry.mode,
            "linkdest": entry.link_target,
            "sha256": entry.sha256,
            "size": entry.size,
            "type": entry.type,
        }
        for entry in analysis.files
    ]


def metadata_document(analysis: ImageAnalysis, record: ImageRecord, metadata_type: str) -> str:
    """The base64 text Anchore returns for a metadata type."""
    image = analysis.image
    if metadata_type == "manifest":
        text = json.dumps(image.manifest)
    elif metadata_type == "docker_history":
        text = json.dumps(list(image.history))
    else:
        text = record.dockerfile or image.dockerfile
    return _b64(text)


# ---- policy checks --------------------------------------------------------------------------------

RESULT_HEADER = [
    "Image_Id",
    "Repo_Tag",
    "Trigger_Id",
    "Gate",
    "Trigger",
    "Check_Output",
    "Gate_Action",
    "Whitelisted",
    "Policy_Id",
]


def evaluation_detail(evaluation: PolicyEvaluation, bundle: dict[str, Any], account: str) -> dict[str, Any]:
    """Anchore's ``detail`` of a check: ``{result: <policy engine document>, policy: <bundle>}``."""
    image_id = _bare(evaluation.image_id) or evaluation.image_id
    rows: list[list[Any]] = [
        [
            image_id,
            row.repo_tag or evaluation.repo_tag or "",
            row.trigger_id,
            row.gate,
            row.trigger,
            row.check_output,
            row.gate_action.value,
            {"whitelist_id": row.allowlist_id, "matched_rule_id": row.allowlist_item_id}
            if row.allowlisted
            else False,
            row.policy_id,
        ]
        for row in evaluation.results
    ]
    return {
        "result": {
            "user_id": account,
            "image_id": image_id,
            "image_digest": evaluation.image_digest,
            "tag": evaluation.repo_tag,
            "bundle": {"id": evaluation.bundle_id, "name": evaluation.bundle_name},
            "created_at": iso(evaluation.evaluated_at),
            "last_modified": iso(evaluation.evaluated_at),
            "matched_mapping_rule": _rule(evaluation.matched_mapping_rule),
            "matched_whitelisted_images_rule": _rule(evaluation.matched_whitelisted_images_rule),
            "matched_blacklisted_images_rule": _rule(evaluation.matched_blacklisted_images_rule),
            "final_action": evaluation.final_action.value.upper(),
            "final_action_reason": evaluation.final_action_reason.value,
            "evaluation_problems": [p.model_dump(mode="json") for p in evaluation.evaluation_problems],
            "result": {
                image_id: {
                    "result": {
                        "header": RESULT_HEADER,
                        "row_count": len(rows),
                        "rows": rows,
                        "final_action": evaluation.policy_final_action.value.upper(),
                    }
                },
                "policy_data": [],
                "whitelist_data": [],
                "policy_name": evaluation.bundle_name or "",
                "whitelist_names": list(evaluation.whitelist_ids),
            },
        },
        "policy": bundle,
    }


def _rule(rule: Any) -> Any:
    return rule.model_dump(mode="json") if rule is not None else False


# ---- policies, registries, subscriptions, events, accounts ------------------------------------------


class PolicyRecord(Body):
    policy_id: str = Field(alias="policyId")
    active: bool
    user_id: str = Field(alias="userId")
    name: str | None = None
    policy_source: str = "local"
    created_at: str | None
    last_updated: str | None
    policybundle: dict[str, Any] | None = None

    @classmethod
    def of(cls, bundle: StoredBundle, account: str, *, detail: bool) -> PolicyRecord:
        return cls(
            policy_id=bundle.bundle_id,
            active=bundle.active,
            user_id=account,
            name=bundle.name,
            created_at=iso(bundle.created_at),
            last_updated=iso(bundle.updated_at),
            policybundle=bundle.document if detail else None,
        )


class RegistryConfiguration(Body):
    """A registry as returned: never the password."""

    registry: str
    registry_name: str | None
    registry_user: str
    registry_type: str
    registry_verify: bool
    user_id: str = Field(alias="userId")
    created_at: str | None
    last_updated: str | None
    # Anchore's swagger spells it this way too.
    last_upated: str | None

    @classmethod
    def of(cls, record: RegistryRecord, account: str) -> RegistryConfiguration:
        return cls(
            registry=record.registry,
            registry_name=record.registry_name or record.registry,
            registry_user=record.registry_user,
            registry_type=record.registry_type,
            registry_verify=record.registry_verify,
            user_id=account,
            created_at=iso(record.created_at),
            last_updated=iso(record.last_updated),
            last_upated=iso(record.last_updated),
        )


class Subscription(Body):
    subscription_id: str
    subscription_key: str
    subscription_type: str
    subscription_value: str | None
    active: bool
    user_id: str = Field(alias="userId")
    created_at: str | None
    last_updated: str | None

    @classmethod
    def of(cls, record: SubscriptionRecord, account: str) -> Subscription:
        return cls(
            subscription_id=record.subscription_id,
            subscription_key=record.subscription_key,
            subscription_type=record.subscription_type.value,
            subscription_value=record.subscription_value,
            active=record.active,
            user_id=account,
            created_at=iso(record.created_at),
            last_updated=iso(record.last_updated),
        )


def event_body(record: EventRecord, account: str) -> dict[str, Any]:
    category = record.type.split(".", 1)[0]
    return {
        "generated_uuid": record.event_id,
        "created_at": iso(record.timestamp),
        "event": {
            "type": record.type,
            "category": category,
            "level": record.level,
            "message": record.message,
            "details": record.details,
            "timestamp": iso(record.timestamp),
            "source": {
                "servicename": "portwarden",
                "hostid": "portwarden",
                "base_url": None,
                "request_id": None,
            },
            "resource": {"user_id": account, "id": record.resource_id, "type": record.resource_type},
        },
    }


class Account(Body):
    name: str
    email: str | None
    type: str
    state: str
    created_at: str | None
    last_updated: str | None

    @classmethod
    def of(cls, record: AccountRecord) -> Account:
        return cls(
            name=record.name,
            email=record.email,
            type=record.type.value,
            state=record.state.value,
            created_at=iso(record.created_at),
            last_updated=iso(record.last_updated),
        )


class User(Body):
    username: str
    type: str
    source: str | None
    created_at: str | None
    last_updated: str | None

    @classmethod
    def of(cls, record: UserRecord) -> User:
        return cls(
            username=record.username,
            type=record.type,
            source=record.source,
            created_at=iso(record.created_at),
            last_updated=iso(record.last_updated),
        )
