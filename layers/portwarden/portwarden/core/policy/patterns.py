"""The pattern syntax shared by mappings, image selection rules and allowlist items.

A pattern is a literal where ``*`` stands for any run of characters (the whole string must match), or,
with the ``regexp:`` prefix, a Python regular expression matched from the start of the string (as
``re.match`` does, like Anchore).
"""

from __future__ import annotations

import re
from functools import lru_cache

REGEXP_PREFIX = "regexp:"


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Raises ``re.error`` for a bad ``regexp:`` pattern (bundle validation reports it)."""
    if pattern.startswith(REGEXP_PREFIX):
        return re.compile(pattern[len(REGEXP_PREFIX) :])
    return re.compile(
        "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)) + r"\Z"
    )


def pattern_error(pattern: str) -> str | None:
    """Why a pattern cannot be used, or None when it is fine."""
    try:
        compile_pattern(pattern)
    except re.error as exc:
        return f"invalid regular expression in {pattern!r}: {exc}"
    return None


def matches(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if pattern == value:
        return True
    return compile_pattern(pattern).match(value) is not None


def is_pattern(text: str) -> bool:
    return "*" in text or text.startswith(REGEXP_PREFIX)
