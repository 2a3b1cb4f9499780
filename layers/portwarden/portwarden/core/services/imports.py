"""SBOM import (Anchore's ``/imports/images``): an analysis made elsewhere becomes an analyzed image.

The packages part is any SBOM ``portwarden.core.sbom.decode`` reads (Syft JSON, as Anchore's
importer takes, and CycloneDX, SPDX or Portwarden JSON); the optional manifest, image config and
Dockerfile parts complete the image's metadata. The result is the same ImageAnalysis the analyzers
produce, so matching, policy evaluation and every image route treat an imported image like an
analyzed one. Nothing is pulled: the image's files are not known, only what the SBOM states.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from portwarden.core.errors import InvalidRequestError
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.sbom.decode import decode_sbom


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise InvalidRequestError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequestError(f"{what} is not a JSON object")
    return parsed


def analysis_from_import(
    packages_document: bytes,
    *,
    location: str,
    image_digest: str,
    image_id: str | None,
    manifest: bytes | None = None,
    image_config: bytes | None = None,
    dockerfile: bytes | None = None,
) -> ImageAnalysis:
    """The ImageAnalysis of an imported image; SbomFormatError when the packages part is no SBOM."""
    analysis = decode_sbom(packages_document, location)
    config = _json_object(image_config, "the image config") if image_config else None
    source_updates: dict[str, Any] = {"manifest_digest": image_digest}
    if image_id:
        source_updates["config_digest"] = image_id
    if (
        config is not None
        and isinstance(config.get("os"), str)
        and isinstance(config.get("architecture"), str)
    ):
        source_updates["platform"] = f"{config['os']}/{config['architecture']}"
    image_updates: dict[str, Any] = {}
    if manifest:
        image_updates["manifest"] = _json_object(manifest, "the manifest")
    if config is not None:
        history = config.get("history")
        image_updates["config"] = {k: v for k, v in config.items() if k != "history"}
        if isinstance(history, list):
            image_updates["history"] = tuple(h for h in history if isinstance(h, Mapping))
    if dockerfile:
        image_updates["dockerfile"] = dockerfile.decode("utf-8", errors="replace")
    return analysis.model_copy(
        update={
            "source": analysis.source.model_copy(update=source_updates),
            "image": analysis.image.model_copy(update=image_updates),
        }
    )
