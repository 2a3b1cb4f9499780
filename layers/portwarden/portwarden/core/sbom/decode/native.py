"""Portwarden's native JSON (``portwarden sbom -o json``, docs/sbom-format.md): the analysis itself."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from portwarden.core.errors import SbomFormatError
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.sbom.decode.common import SOURCE_TYPE

FORMAT_NAME = "Portwarden JSON"
SUPPORTED_SCHEMA_VERSIONS = (1,)


def is_native(document: dict[str, Any]) -> bool:
    source = document.get("source")
    return "schema_version" in document and isinstance(source, dict) and "manifest_digest" in source


def decode_native(document: dict[str, Any], location: str) -> ImageAnalysis:
    version = document.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SbomFormatError(
            f"{location}: Portwarden JSON schema version {version} is not supported "
            f"(this version reads {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})"
        )
    try:
        analysis = ImageAnalysis.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SbomFormatError(
            f"{location}: not a valid Portwarden JSON document ({exc.error_count()} problems; "
            f"first at {where}: {first['msg']})"
        ) from exc
    warnings: list[str] = []
    kept = []
    for package in analysis.packages:
        if package.version.strip():
            kept.append(package)
        else:
            warnings.append(
                f"skipped package {package.name} ({package.purl or package.type.value}): no version"
            )
    if not analysis.packages:
        warnings.append(f"{location}: the {FORMAT_NAME} SBOM lists no packages")
    elif not kept:
        raise SbomFormatError(f"{location}: none of the {len(analysis.packages)} packages has a version")
    # The document was written for an image; what is scanned now is the document.
    source = analysis.source.model_copy(update={"type": SOURCE_TYPE, "location": location})
    return analysis.model_copy(
        update={"source": source, "packages": tuple(kept), "warnings": tuple(warnings)}
    )
