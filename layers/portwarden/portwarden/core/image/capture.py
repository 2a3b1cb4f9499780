"""What to keep while a layer streams by: capture globs, content conditions, content scanners.

A ``CapturePolicy`` says which file contents analyzers need (globs over absolute paths, a size cap).
Captures can be conditional (``ConditionalGlob``): a file is kept only if its content meets a
``ContentCondition``, checked on the bytes as they stream by. ``ContentScanner``s look at small
files' content (secrets, content search) without keeping it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

from portwarden.core.image import paths


class ContentCondition:
    """Keep a captured file only when its content looks right: it starts with one of ``prefixes``
    and holds one of ``markers`` somewhere. The reader sees every byte anyway, so checking costs a
    substring search, and files that cannot interest the analyzer are never stored."""

    def __init__(self, name: str, prefixes: tuple[bytes, ...], markers: tuple[bytes, ...]) -> None:
        if not prefixes or not markers or not all(markers):
            raise ValueError("a content condition needs prefixes and non-empty markers")
        self.name = name
        self.prefixes = prefixes
        self.markers = markers
        # A marker may straddle two chunks: this much of the previous chunk is searched again.
        self.overlap = max(len(m) for m in markers) - 1

    def accepts_head(self, head: bytes) -> bool:
        return head.startswith(self.prefixes)

    def holds_marker(self, data: bytes) -> bool:
        return any(marker in data for marker in self.markers)

    def straddles(self, before: bytes, after: bytes) -> bool:
        """Whether a marker starts at the end of ``before`` and ends at the start of ``after``."""
        if not self.overlap:
            return False
        return self.holds_marker(before[-self.overlap :] + after[: self.overlap])

    def accepts(self, data: bytes) -> bool:
        return self.accepts_head(data) and self.holds_marker(data)

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(p.hex() for p in self.prefixes), "|", *(m.hex() for m in self.markers)]
        return ",".join(parts)


class ConditionalGlob(str):
    """A capture glob whose matches are kept only when ``condition`` accepts their content.

    It is a ``str`` so that it travels through ``capture_patterns`` tuples and glob helpers like any
    other pattern; only the CapturePolicy looks at the condition.
    """

    condition: ContentCondition

    def __new__(cls, pattern: str, condition: ContentCondition) -> ConditionalGlob:
        glob = super().__new__(cls, pattern)
        glob.condition = condition
        return glob


def _compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    regexes = [paths.glob_to_regex(p).pattern for p in patterns]
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None


class CapturePolicy:
    """Which file contents to keep while streaming: globs over absolute paths, and a size cap.

    Plain globs keep every match. A ConditionalGlob keeps a match only when its condition accepts
    the content; a path that any plain glob matches is kept unconditionally.
    """

    def __init__(self, patterns: tuple[str, ...] = (), max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.patterns = tuple(sorted(set(patterns)))
        self.max_file_bytes = max_file_bytes
        self._regex = _compile(self.patterns)
        plain = [p for p in self.patterns if not isinstance(p, ConditionalGlob)]
        self._plain = _compile(plain)
        conditional: dict[str, list[str]] = {}
        self._conditions: dict[str, ContentCondition] = {}
        for pattern in self.patterns:
            if isinstance(pattern, ConditionalGlob):
                conditional.setdefault(pattern.condition.name, []).append(pattern)
                self._conditions[pattern.condition.name] = pattern.condition
        self._conditional = [
            (self._conditions[name], regex)
            for name, globs in sorted(conditional.items())
            if (regex := _compile(globs)) is not None
        ]

    def wants(self, path: str) -> bool:
        """Whether ``path`` may be kept (conditional matches still depend on their content)."""
        return self._regex is not None and self._regex.match(path) is not None

    def condition_for(self, path: str) -> ContentCondition | None:
        """The condition a wanted ``path`` must meet, None when it is kept whatever its content."""
        if not self._conditional or (self._plain is not None and self._plain.match(path) is not None):
            return None
        for condition, regex in self._conditional:
            if regex.match(path) is not None:
                return condition
        return None

    @property
    def fingerprint(self) -> str:
        """Stable identity of the policy, part of layer-cache keys."""
        text = "\n".join(self.patterns) + f"\n{self.max_file_bytes}"
        for name in sorted(self._conditions):
            conditional = sorted(
                p for p in self.patterns if isinstance(p, ConditionalGlob) and p.condition.name == name
            )
            text += f"\n{self._conditions[name].fingerprint}:" + ",".join(conditional)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ContentScanner(Protocol):
    """Looks at the content of small regular files as they stream by (secrets, content search)."""

    name: str
    max_file_bytes: int

    def scan(self, path: str, data: bytes) -> list[tuple[int, str]]:
        """(line number, pattern name) for every hit."""
        ...

    @property
    def fingerprint(self) -> str: ...
