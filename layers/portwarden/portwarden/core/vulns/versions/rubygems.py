"""RubyGems versions, ordered like ``Gem::Version``.

Our own (the algorithm is a dozen lines). As Gem::Version does: ``-`` means ``.pre.``; the version
is read as segments, each a run of digits (an integer) or of letters (a string); trailing zero
segments of the release part and of the pre-release part are dropped; then segments compare pairwise,
missing ones counting as 0, integers numerically, strings in ASCII order, and a string (a
pre-release) below any integer, so ``1.0.a < 1.0 < 1.0.1``.

``is_valid`` applies Gem::Version's own pattern. Platform suffixes (``1.2.0-x86_64-linux``) are
*not* stripped here: Gem::Version reads them as a pre-release; catalogers keep the platform apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portwarden.core.vulns.versions.base import ParsingComparator, fallback_compare, sign

_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")
_VALID_GEM = re.compile(r"^\s*[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\s*$")

Segment = int | str


@dataclass(frozen=True, slots=True)
class GemVersion:
    segments: tuple[Segment, ...]


def _drop_trailing_zeros(segments: list[Segment]) -> list[Segment]:
    end = len(segments)
    while end and segments[end - 1] == 0:
        end -= 1
    return segments[:end]


def parse_gem(version: str) -> GemVersion:
    text = version.strip().replace("-", ".pre.")
    segments: list[Segment] = [int(part) if part.isdigit() else part for part in _SEGMENT.findall(text)]
    first_string = next((i for i, seg in enumerate(segments) if isinstance(seg, str)), len(segments))
    release, prerelease = segments[:first_string], segments[first_string:]
    return GemVersion(tuple(_drop_trailing_zeros(release) + _drop_trailing_zeros(prerelease)))


def compare_gem(a: GemVersion, b: GemVersion) -> int:
    if a.segments == b.segments:
        return 0
    for index in range(max(len(a.segments), len(b.segments))):
        left: Segment = a.segments[index] if index < len(a.segments) else 0
        right: Segment = b.segments[index] if index < len(b.segments) else 0
        if left == right:
            continue
        if isinstance(left, str) and isinstance(right, int):
            return -1
        if isinstance(left, int) and isinstance(right, str):
            return 1
        if isinstance(left, int) and isinstance(right, int):
            return sign(left - right)
        return fallback_compare(str(left), str(right))
    return 0


class RubyGemsComparator(ParsingComparator):
    name = "rubygems"

    def _parse(self, version: str) -> GemVersion:
        return parse_gem(version)

    def _compare_parsed(self, a: GemVersion, b: GemVersion) -> int:
        return compare_gem(a, b)

    def is_valid(self, version: str) -> bool:
        return _VALID_GEM.match(version) is not None
