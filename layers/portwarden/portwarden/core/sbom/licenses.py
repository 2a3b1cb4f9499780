"""Telling SPDX license identifiers and expressions apart from free-text license names.

Packages declare licenses however their ecosystem spells them: ``MIT``, ``mit``, ``GPL-2.0+``,
``MIT OR Apache-2.0``, ``GPL-2+`` (Debian copyright short names), ``Apache 2.0``, ``Public Domain``.
SBOM formats want SPDX identifiers where possible and something explicitly non-SPDX otherwise, so every
string is classified once, against the SPDX license list shipped with ``license-expression``, the same
list spdx-tools validates documents against.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any

LICENSE_REF_PREFIX = "LicenseRef-"
_NOT_IN_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")
_MAX_IDSTRING = 64


class LicenseKind(StrEnum):
    SPDX_ID = "spdx-id"
    """One license from the SPDX list, e.g. ``MIT``."""
    SPDX_EXPRESSION = "spdx-expression"
    """A valid compound expression, e.g. ``MIT OR Apache-2.0`` or ``GPL-2.0-or-later WITH …``."""
    OTHER = "other"
    """Anything the SPDX list does not cover: kept as a name or turned into a ``LicenseRef-``."""


@dataclass(frozen=True)
class ClassifiedLicense:
    text: str
    """The license string as the package declared it."""
    kind: LicenseKind
    spdx: str | None
    """The canonical SPDX rendering (``mit`` → ``MIT``, ``GPL-2.0+`` → ``GPL-2.0-or-later``), or None."""


@cache
def _spdx_licensing() -> Any:
    # Building the licensing index reads the whole SPDX list; only pay for it when a license is classified.
    from spdx_tools.common.spdx_licensing import spdx_licensing

    return spdx_licensing


@lru_cache(maxsize=4096)
def classify_license(text: str) -> ClassifiedLicense:
    """Classify one declared license string (the same strings recur across thousands of packages)."""
    stripped = text.strip()
    if not stripped:
        return ClassifiedLicense(text=text, kind=LicenseKind.OTHER, spdx=None)
    licensing = _spdx_licensing()
    try:
        parsed = licensing.parse(stripped, validate=True, strict=True)
    except Exception:  # license-expression raises several unrelated exception types for bad input
        return ClassifiedLicense(text=text, kind=LicenseKind.OTHER, spdx=None)
    if parsed is None:
        return ClassifiedLicense(text=text, kind=LicenseKind.OTHER, spdx=None)
    rendered = str(parsed.render())
    keys = list(licensing.license_keys(parsed))
    is_single = len(keys) == 1 and rendered == keys[0]
    return ClassifiedLicense(
        text=text,
        kind=LicenseKind.SPDX_ID if is_single else LicenseKind.SPDX_EXPRESSION,
        spdx=rendered,
    )


def license_ref_idstring(text: str) -> str:
    """``Public Domain`` → ``Public-Domain``: the characters SPDX allows in a ``LicenseRef-`` id.

    Some packages put a whole license text where a name belongs (Python's ``License:`` header); such
    ids are cut short and made unique with a digest of the full text.
    """
    cleaned = _NOT_IN_IDSTRING.sub("-", text.strip()).strip("-")
    if cleaned.startswith(LICENSE_REF_PREFIX):
        cleaned = cleaned[len(LICENSE_REF_PREFIX) :]
    if len(cleaned) > _MAX_IDSTRING:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: _MAX_IDSTRING - 9].rstrip('-')}-{digest}"
    return cleaned or "unknown"


class LicenseRefAllocator:
    """Hands out one stable ``LicenseRef-`` id per distinct non-SPDX license string.

    Two strings that sanitize to the same id (``GPL 2`` and ``GPL-2``) must not share it, so the later
    one gets a short hash of its text appended; the result depends only on the strings, not on timing.
    """

    def __init__(self) -> None:
        self._by_text: dict[str, str] = {}
        self._by_ref: dict[str, str] = {}

    def ref_for(self, text: str) -> str:
        known = self._by_text.get(text)
        if known is not None:
            return known
        ref = LICENSE_REF_PREFIX + license_ref_idstring(text)
        if ref in self._by_ref:
            ref = f"{ref}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        self._by_text[text] = ref
        self._by_ref[ref] = text
        return ref

    @property
    def allocated(self) -> dict[str, str]:
        """``LicenseRef-…`` id → the original license text, in allocation order."""
        return dict(self._by_ref)


def combined_expression(licenses: Iterable[str], refs: LicenseRefAllocator) -> str | None:
    """All declared licenses as one SPDX expression joined with AND (each declared license applies to the
    package); free-text names become ``LicenseRef-`` ids. None when nothing is declared."""
    parts: list[str] = []
    for text in dict.fromkeys(item for item in licenses if item.strip()):
        classified = classify_license(text)
        parts.append(classified.spdx if classified.spdx is not None else refs.ref_for(text))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # AND binds tighter than OR: a compound part keeps its meaning only inside parentheses.
    return " AND ".join(f"({part})" if _is_compound(part) else part for part in parts)


def _is_compound(expression: str) -> bool:
    return " OR " in expression or " AND " in expression
