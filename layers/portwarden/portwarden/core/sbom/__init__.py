"""SBOM encoders: the native JSON document, CycloneDX 1.6 and SPDX 2.3 JSON, table rows, CPE candidates.

Each format lives in its own module and this package imports none of them eagerly: the CycloneDX and SPDX
libraries are slow to import, and the assembly step only needs ``cpe``. ``encode`` picks the encoder for
an output format name as the command line spells it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from portwarden.core.model.analysis import ImageAnalysis

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


class DocumentFormat(StrEnum):
    """Serialized SBOM formats (the table is rendered by the command line from ``table.package_rows``)."""

    NATIVE_JSON = "json"
    CYCLONEDX_JSON = "cyclonedx-json"
    SPDX_JSON = "spdx-json"


def encode(analysis: ImageAnalysis, document_format: DocumentFormat | str) -> str:
    """The analysis serialized in ``document_format`` (no trailing newline); an unknown name raises
    ``ValueError``."""
    chosen = DocumentFormat(document_format)
    if chosen is DocumentFormat.CYCLONEDX_JSON:
        from portwarden.core.sbom.cyclonedx import to_cyclonedx_json

        return to_cyclonedx_json(analysis)
    if chosen is DocumentFormat.SPDX_JSON:
        from portwarden.core.sbom.spdx import to_spdx_json

        return to_spdx_json(analysis)
    from portwarden.core.sbom.native import to_native_json

    return to_native_json(analysis)


def write_document(
    analysis: ImageAnalysis, document_format: DocumentFormat | str, out: SupportsWrite[bytes]
) -> None:
    """Write the analysis in ``document_format`` to ``out`` as UTF-8 (no trailing newline).

    The native document is streamed in bounded pieces (its ``files`` list alone can be 100+ MB); the other
    formats are built whole by their libraries and written at once.
    """
    chosen = DocumentFormat(document_format)
    if chosen is DocumentFormat.NATIVE_JSON:
        from portwarden.core.sbom.native import write_native_json

        write_native_json(analysis, out)
        return
    out.write(encode(analysis, chosen).encode())
