"""Secret search and content search: named regexes over the text of small files, on the stream.

The default secret patterns carry Anchore's names (AWS_ACCESS_KEY, AWS_SECRET_KEY, PRIV_KEY,
DOCKER_AUTH, API_KEY) so policies written against Anchore's secret_scans gate keep working. Hits
report the path, the line number and the pattern name — never the matched text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

from portwarden.core.errors import ConfigurationError
from portwarden.core.image.capture import literal_anchored_regex

DEFAULT_SECRET_PATTERNS: dict[str, str] = {
    "AWS_ACCESS_KEY": (
        r"(?i)aws_access_key_id[ \t]*[=:][^\n]*?(?<![A-Z0-9])"
        r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])"
    ),
    "AWS_SECRET_KEY": (
        r"(?i)aws_secret_access_key[\"']?[ \t]*[=:][ \t\"']*[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
    ),
    "PRIV_KEY": r"-----BEGIN[ A-Z0-9]*PRIVATE KEY( BLOCK)?-----",
    "DOCKER_AUTH": r'(?i)"auth"[ \t]*:[ \t]*"[A-Za-z0-9+/=]{4,}"',
    "API_KEY": r"(?i)api[-_]?key[\"']?[ \t]*[=:][ \t]*[\"']?[A-Za-z0-9_\-]{20,60}(?![A-Za-z0-9_\-])",
}
# A cheap first pass: files without any of these words (in any case) cannot match a default
# pattern. Lower-casing and searching literals runs at memory speed, where a case-insensitive regex
# alternation steps through the text one character at a time.
_DEFAULT_PREFILTER_WORDS = (
    b"aws_access_key_id",
    b"aws_secret_access_key",
    b"private key",
    b'"auth"',
    b"apikey",
    b"api-key",
    b"api_key",
)


# Every word but '"auth"' contains "key": one regex anchored on that literal finds them all in one
# pass at C speed (core.image.capture.literal_anchored_regex). A word-by-word scan read the text once
# per word; a Python loop over the occurrences of "key" cost a few microseconds each.
_KEY_WORDS = tuple(word for word in _DEFAULT_PREFILTER_WORDS if b"key" in word)
_OTHER_WORDS = tuple(word for word in _DEFAULT_PREFILTER_WORDS if b"key" not in word)
_KEY_WORD_REGEX = literal_anchored_regex(_KEY_WORDS, b"key")


def _may_hold_default_secret(data: bytes) -> bool:
    """Whether the text holds one of the prefilter words, in any case (a necessary condition)."""
    lowered = data.lower()
    if _KEY_WORD_REGEX.search(lowered) is not None:
        return True
    return any(word in lowered for word in _OTHER_WORDS)


def compile_patterns(patterns: Mapping[str, str], what: str) -> dict[str, re.Pattern[bytes]]:
    compiled: dict[str, re.Pattern[bytes]] = {}
    for name, pattern in patterns.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigurationError(f"{what} pattern name {name!r}: use letters, digits, _ . -")
        try:
            compiled[name] = re.compile(pattern.encode())
        except re.error as exc:
            raise ConfigurationError(f"{what} pattern {name}: invalid regex ({exc})") from exc
    return compiled


class RegexScanner:
    """A ContentScanner (core.image.layer) matching named regexes line-aware over file contents."""

    def __init__(
        self,
        name: str,
        version: int,
        patterns: Mapping[str, str],
        *,
        max_file_bytes: int = 1024 * 1024,
        prefilter: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.max_file_bytes = max_file_bytes
        self._source = dict(patterns)
        self._patterns = compile_patterns(patterns, name)
        self._prefilter = prefilter

    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{k}={v}" for k, v in sorted(self._source.items()))
        return hashlib.sha256(
            f"{self.name}:{self.version}:{self.max_file_bytes}:{text}".encode()
        ).hexdigest()[:16]

    def scan(self, path: str, data: bytes) -> list[tuple[int, str]]:
        if self._prefilter is not None and not self._prefilter(data):
            return []
        hits: list[tuple[int, str]] = []
        for name, regex in self._patterns.items():
            seen_lines: set[int] = set()
            for match in regex.finditer(data):
                line = data.count(b"\n", 0, match.start()) + 1
                if line not in seen_lines:
                    seen_lines.add(line)
                    hits.append((line, name))
        hits.sort()
        return hits


def secret_scanner(extra_patterns: Mapping[str, str] | None = None) -> RegexScanner:
    """Anchore's default secret patterns, plus the user's (which may override a default by name)."""
    patterns = {**DEFAULT_SECRET_PATTERNS, **(extra_patterns or {})}
    prefilter = _may_hold_default_secret if not extra_patterns else None
    return RegexScanner("secrets", 1, patterns, prefilter=prefilter)


def content_search_scanner(patterns: Mapping[str, str]) -> RegexScanner | None:
    """User regexes searched in file contents (Anchore's content_search); None when there are none."""
    return RegexScanner("content_search", 1, patterns) if patterns else None
