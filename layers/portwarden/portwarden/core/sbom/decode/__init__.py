"""SBOMs as input: Syft JSON, CycloneDX JSON 1.4 to 1.6, SPDX 2.3 JSON and Portwarden's native JSON, decoded
into an :class:`ImageAnalysis` that matching, triage and policy treat like an analyzed image.

A document that cannot be read at all (not JSON, an unknown format, an unsupported spec version, no
usable package) raises :class:`SbomFormatError` with one line saying why; a package that cannot be used
(no version, a type Portwarden does not match) is skipped with one warning in ``analysis.warnings``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from portwarden.core.errors import SbomFormatError
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.sbom.decode.common import parse_json_object

# An SBOM of a large image is tens of MB; anything far beyond is not an SBOM worth parsing in memory.
MAX_SBOM_BYTES = 512 * 1024 * 1024


class SbomFormat(StrEnum):
    SYFT_JSON = "syft-json"
    CYCLONEDX_JSON = "cyclonedx-json"
    SPDX_JSON = "spdx-json"
    NATIVE_JSON = "json"


def detect_format(document: dict[str, Any], location: str) -> SbomFormat:
    from portwarden.core.sbom.decode import cyclonedx, native, spdx, syft

    if cyclonedx.is_cyclonedx(document):
        return SbomFormat.CYCLONEDX_JSON
    if spdx.is_spdx(document):
        return SbomFormat.SPDX_JSON
    if native.is_native(document):
        return SbomFormat.NATIVE_JSON
    if syft.is_syft(document):
        return SbomFormat.SYFT_JSON
    raise SbomFormatError(
        f"{location} is not an SBOM format Portwarden reads "
        "(Syft JSON, CycloneDX JSON 1.4-1.6, SPDX 2.3 JSON, Portwarden JSON)"
    )


def decode_sbom(data: bytes, location: str) -> ImageAnalysis:
    """The analysis an SBOM document states (``location`` names it in messages and in the analysis)."""
    from portwarden.core.sbom.decode import cyclonedx, native, spdx, syft

    document = parse_json_object(data, location)
    chosen = detect_format(document, location)
    if chosen is SbomFormat.CYCLONEDX_JSON:
        return cyclonedx.decode_cyclonedx(document, data, location)
    if chosen is SbomFormat.SPDX_JSON:
        return spdx.decode_spdx(document, data, location)
    if chosen is SbomFormat.NATIVE_JSON:
        return native.decode_native(document, location)
    return syft.decode_syft(document, data, location)


def read_sbom(path: Path) -> ImageAnalysis:
    """:func:`decode_sbom` of a file; a missing, unreadable or oversized file is an SbomFormatError."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise SbomFormatError(f"cannot read SBOM {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_SBOM_BYTES:
        raise SbomFormatError(f"{path} is larger than {MAX_SBOM_BYTES} bytes")
    return decode_sbom(data, str(path))


__all__ = ["MAX_SBOM_BYTES", "SbomFormat", "decode_sbom", "detect_format", "read_sbom"]
