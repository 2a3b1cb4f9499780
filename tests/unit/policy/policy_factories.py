"""Builders for crafted analyses, matches and one-rule bundles used by the policy tests."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from portwarden.core.model.analysis import (
    AnalysisSource,
    AnalyzedFile,
    ContentMatch,
    ImageAnalysis,
    ImageMetadata,
    RetrievedFile,
    SecretFinding,
)
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchCvss, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.policy import EvaluationInput, PolicyEvaluation, PolicyResultRow
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.services.evaluate import evaluate, load_bundle_bytes

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
CONFIG_DIGEST = "sha256:" + "b" * 64


def analysis(**fields: Any) -> ImageAnalysis:
    values: dict[str, Any] = {
        "source": AnalysisSource(
            type="registry",
            reference="docker.io/library/app:1.0",
            location="docker.io/library/app:1.0",
            manifest_digest=DIGEST,
            config_digest=CONFIG_DIGEST,
            platform="linux/amd64",
        ),
        "distro": Distro(id="debian", version_id="12", id_like=()),
    }
    values.update(fields)
    return ImageAnalysis(**values)


def image(
    *, dockerfile: str = "", config: dict[str, Any] | None = None, layers: int = 0, layer_size: int = 0
) -> ImageMetadata:
    return ImageMetadata(
        config=config or {},
        dockerfile=dockerfile,
        layers=tuple(
            {"digest": f"sha256:{i:064x}", "size": layer_size // 2, "uncompressed_size": layer_size}
            for i in range(layers)
        ),
    )


def package(
    name: str,
    version: str,
    type_: PackageType = PackageType.DEB,
    *,
    licenses: tuple[str, ...] = (),
    location: str | None = None,
    owned_files: tuple[str, ...] = (),
) -> Package:
    return Package(
        name=name,
        version=version,
        type=type_,
        licenses=licenses,
        locations=(Location(path=location),) if location else (),
        found_by="test",
        owned_files=owned_files,
    )


def file(path: str, mode: str = "0644", *, sha256: str | None = None, setuid: bool = False) -> AnalyzedFile:
    return AnalyzedFile(
        path=path, type="file", mode=mode, uid=0, gid=0, size=1, sha256=sha256, setuid=setuid, setgid=False
    )


def retrieved(path: str, text: str) -> RetrievedFile:
    data = text.encode()
    return RetrievedFile(path=path, size=len(data), content_b64=base64.b64encode(data).decode())


def secret(path: str, name: str, line: int = 1) -> SecretFinding:
    return SecretFinding(path=path, line=line, name=name)


def content_match(path: str, name: str, line: int = 1) -> ContentMatch:
    return ContentMatch(path=path, line=line, name=name)


def match(
    vuln_id: str,
    name: str,
    version: str = "1.0",
    type_: str = "deb",
    *,
    severity: Severity = Severity.HIGH,
    fix_state: FixState = FixState.FIXED,
    fix_versions: tuple[str, ...] = ("1.1",),
    location: str | None = None,
    published: datetime | None = None,
    fix_since: datetime | None = None,
    cvss: tuple[MatchCvss, ...] = (),
    aliases: tuple[str, ...] = (),
    urls: tuple[str, ...] = (),
) -> Match:
    return Match(
        id=vuln_id,
        aliases=aliases,
        severity=severity,
        cvss=cvss,
        fix=MatchFix(
            state=fix_state,
            versions=fix_versions if fix_state == FixState.FIXED else (),
            available_since=fix_since,
        ),
        package=MatchedPackage(name=name, version=version, type=type_, location=location),
        namespace="debian:12",
        urls=urls,
        published=published,
        matched_by=MatchDetail(
            matcher="test",
            namespace="debian:12",
            searched_by="name",
            constraint="< 1.1",
            version_format="dpkg",
        ),
    )


def data(image_analysis: ImageAnalysis | None = None, **fields: Any) -> EvaluationInput:
    values: dict[str, Any] = {"analysis": image_analysis or analysis(), "now": NOW, "db_built_at": NOW}
    values.update(fields)
    return EvaluationInput(**values)


def one_rule_bundle(
    gate: str, trigger: str, params: dict[str, str] | None = None, action: str = "STOP"
) -> dict[str, Any]:
    return {
        "id": "test-bundle",
        "version": "1_0",
        "name": "test",
        "policies": [
            {
                "id": "p1",
                "version": "1_0",
                "rules": [
                    {
                        "id": "r1",
                        "gate": gate,
                        "trigger": trigger,
                        "action": action,
                        "params": [{"name": k, "value": v} for k, v in (params or {}).items()],
                    }
                ],
            }
        ],
        "whitelists": [],
        "mappings": [
            {
                "id": "m1",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": ["p1"],
                "whitelist_ids": [],
            }
        ],
    }


def run(
    gate: str, trigger: str, params: dict[str, str] | None, evaluation_input: EvaluationInput
) -> PolicyEvaluation:
    bundle = load_bundle_bytes(one_rule_bundle(gate, trigger, params))
    return evaluate(bundle, evaluation_input)


def fired(
    gate: str, trigger: str, params: dict[str, str] | None, evaluation_input: EvaluationInput
) -> list[PolicyResultRow]:
    """The rows of a one-rule bundle; fails the test if the rule could not run."""
    result = run(gate, trigger, params, evaluation_input)
    assert not result.evaluation_problems, result.evaluation_problems
    return list(result.results)
