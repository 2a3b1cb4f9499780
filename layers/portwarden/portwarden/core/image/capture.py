"""What to keep while a layer streams by: capture globs, content conditions, content scanners.

A ``CapturePolicy`` says which file contents analyzers need (globs over absolute paths, a size cap).
Captures can be conditional (``ConditionalGlob``): a file is kept only if its content meets a
``ContentCondition``, checked on the bytes as they stream by. ``ContentScanner``s look at small
files' content (secrets, content search) without keeping it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from functools import cached_property
from typing import Protocol

from portwarden.core.image import paths


def literal_anchored_regex(words: Sequence[bytes], anchor: bytes) -> re.Pattern[bytes]:
    """A regex matching exactly where one of ``words`` (each holding ``anchor``) occurs.

    ``ANCHOR(?:(?<=BEFORE ANCHOR)AFTER|…)``, each word split at its first ``anchor``: a pattern that
    starts with a literal lets the regex engine skip from one occurrence of it to the next in C, and
    the look-behinds (fixed width, one per word) check the rest there. Several words then cost one
    pass over the data instead of one each, with no Python per occurrence.
    """
    if not anchor or not words or not all(anchor in word for word in words):
        raise ValueError("every word must hold the (non-empty) anchor")
    alternatives = []
    for word in words:
        end = word.index(anchor) + len(anchor)
        alternatives.append(b"(?<=" + re.escape(word[:end]) + b")" + re.escape(word[end:]))
    return re.compile(re.escape(anchor) + b"(?:" + b"|".join(alternatives) + b")")


_ANCHOR_LENGTH = 3


def _marker_search(markers: tuple[bytes, ...]) -> tuple[re.Pattern[bytes] | None, tuple[bytes, ...]]:
    """One anchored regex for the markers sharing the most common 3-byte piece, and the rest."""
    anchor = b""
    covered: tuple[bytes, ...] = ()
    for marker in markers:
        for start in range(len(marker) - _ANCHOR_LENGTH + 1):
            piece = marker[start : start + _ANCHOR_LENGTH]
            cover = tuple(m for m in markers if piece in m)
            if len(cover) > len(covered):
                anchor, covered = piece, cover
    if len(covered) < 2:
        return None, markers
    return literal_anchored_regex(covered, anchor), tuple(m for m in markers if m not in covered)


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

    @cached_property
    def _search(self) -> tuple[re.Pattern[bytes] | None, tuple[bytes, ...]]:
        # Executables are searched a megabyte at a time: markers that share a piece are looked for
        # in one pass (the Go and Rust markers: four passes became two). Compiled on first use.
        return _marker_search(self.markers)

    def holds_marker(self, data: bytes) -> bool:
        anchored, others = self._search
        if anchored is not None and anchored.search(data) is not None:
            return True
        return any(marker in data for marker in others)

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


_WILDCARDS = frozenset("*?[")
_CLASS_WITH_SLASH = re.compile(r"\[[^\]]*/")


class GlobPrefilter:
    """A necessary condition for a path to match any of the globs, checked at C speed.

    An absolute glob can only match paths that start with its literal head (``/usr/share/doc/`` for
    ``/usr/share/doc/*/copyright``) and, without ``**``, that have as many components as it has
    (so ``/*`` looks at top-level paths only). A ``**/.../LAST`` glob can only match paths whose last
    component matches ``LAST``: a literal name (a set lookup), ``*`` and a literal suffix
    (``str.endswith``), or else a small regex over the last component alone. A glob of any other
    shape disables the filter, so the answer is never narrower than the full regex's.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        prefixes: list[str] = []  # globs with "**": any depth
        by_depth: dict[int, list[str]] = {}
        names: set[str] = set()
        suffixes: list[str] = []
        tails: list[str] = []
        self.disabled = False
        for raw in patterns:
            pattern = raw if raw.startswith(("/", "**")) else "/" + raw
            if _CLASS_WITH_SLASH.search(pattern):  # a class that spans components: no shortcut
                self.disabled = True
            elif pattern.startswith("**/"):
                last = pattern.rsplit("/", 1)[1]
                if not _WILDCARDS.intersection(last):
                    names.add(last)
                elif last.startswith("*") and not _WILDCARDS.intersection(last[1:]) and "/" not in last:
                    suffixes.append(last[1:])
                else:
                    tails.append(paths.glob_to_regex("/" + last).pattern.removeprefix("/"))
            elif pattern.startswith("/"):
                head = pattern
                for index, char in enumerate(pattern):
                    if char in _WILDCARDS:
                        head = pattern[:index]
                        break
                if "**" in pattern:
                    prefixes.append(head)
                else:
                    by_depth.setdefault(pattern.count("/"), []).append(head)
            else:  # "**name": any path may match
                self.disabled = True
        self._prefixes = tuple(prefixes)
        self._by_depth = {depth: tuple(heads) for depth, heads in by_depth.items()}
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)
        self._tails = re.compile("|".join(f"(?:{t})" for t in tails)) if tails else None

    @property
    def judges_last_component(self) -> bool:
        """Whether ``may_match_name`` of a path's last component alone is the whole condition (every
        glob is a ``**/.../LAST`` one)."""
        return not self.disabled and not self._prefixes and not self._by_depth

    def may_match_name(self, base: str) -> bool:
        """The condition on a path's last component (all of it when ``judges_last_component``)."""
        if base in self._names or base.endswith(self._suffixes):
            return True
        return self._tails is not None and self._tails.match(base) is not None

    def names_among(self, names: Collection[str]) -> list[str]:
        """The members of ``names`` (last components) that ``may_match_name`` accepts, found without
        a call per name: looked up when the globs name their files outright (``**/go.mod``), else
        one comprehension over ``names`` (each language analyzer asks this of every distinct name
        of the image, a few thousand to a few hundred thousand)."""
        literal, suffixes, tails = self._names, self._suffixes, self._tails
        if not suffixes and tails is None:
            return [name for name in literal if name in names]
        if tails is None:
            return [name for name in names if name in literal or name.endswith(suffixes)]
        match = tails.match
        return [name for name in names if name in literal or name.endswith(suffixes) or match(name)]

    def may_match(self, path: str) -> bool:
        if self.disabled or path.startswith(self._prefixes):
            return True
        if path.startswith(self._by_depth.get(path.count("/"), ())):
            return True
        base = path[path.rfind("/") + 1 :]
        if base in self._names or base.endswith(self._suffixes):
            return True
        return self._tails is not None and self._tails.match(base) is not None


class CapturePolicy:
    """Which file contents to keep while streaming: globs over absolute paths, and a size cap.

    Plain globs keep every match. A ConditionalGlob keeps a match only when its condition accepts
    the content; a path that any plain glob matches is kept unconditionally.
    """

    def __init__(self, patterns: tuple[str, ...] = (), max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.patterns = tuple(sorted(set(patterns)))
        self.max_file_bytes = max_file_bytes
        self._prefilter = GlobPrefilter(self.patterns)
        self._conditions: dict[str, ContentCondition] = {}
        for pattern in self.patterns:
            if isinstance(pattern, ConditionalGlob):
                self._conditions[pattern.condition.name] = pattern.condition

    # The regexes are compiled when a layer is first read, not when the policy is made: a rescan
    # answered from the result cache needs only the fingerprint (compiling costs ~0.1 s of start-up).
    # Two threads compiling at once each get an equal regex; the last one stored stays.
    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        return _compile(self.patterns)

    @cached_property
    def _plain(self) -> re.Pattern[str] | None:
        return _compile([p for p in self.patterns if not isinstance(p, ConditionalGlob)])

    @cached_property
    def _conditional(self) -> list[tuple[ContentCondition, re.Pattern[str]]]:
        conditional: dict[str, list[str]] = {}
        for pattern in self.patterns:
            if isinstance(pattern, ConditionalGlob):
                conditional.setdefault(pattern.condition.name, []).append(pattern)
        return [
            (self._conditions[name], regex)
            for name, globs in sorted(conditional.items())
            if (regex := _compile(globs)) is not None
        ]

    def wants(self, path: str) -> bool:
        """Whether ``path`` may be kept (conditional matches still depend on their content)."""
        # Called for every entry of every layer: most paths fail the cheap necessary condition, and
        # only the rest pay for the alternation of every glob.
        if not self._prefilter.may_match(path):
            return False
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
