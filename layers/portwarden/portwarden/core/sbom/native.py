"""The native JSON document: the analysis as Portwarden stores it, minus internal bookkeeping.

Fields appear in model declaration order and free-form maps (package metadata, image config) keep the
order the analyzers produced, so the same analysis always serializes to the same bytes. The document is
described field by field in ``docs/sbom-format.md`` and loads back with ``ImageAnalysis.model_validate_json``.
"""

from __future__ import annotations

from typing import Any

from portwarden.core.model.analysis import ImageAnalysis

# ``owned_files`` lists every path an OS package installs; assembly uses it to drop language packages an
# OS package already accounts for. It is large (tens of thousands of paths for a typical distro image),
# and the same paths are in ``files``, so the published document leaves it out by default.
_INTERNAL_PACKAGE_FIELDS = frozenset({"owned_files"})


def to_native_json(analysis: ImageAnalysis, *, include_owned_files: bool = False, indent: int = 2) -> str:
    """The documented native JSON for ``analysis``."""
    exclude: dict[str, Any] | None = None
    if not include_owned_files:
        exclude = {"packages": {"__all__": set(_INTERNAL_PACKAGE_FIELDS)}}
    return analysis.model_dump_json(indent=indent, exclude=exclude)
