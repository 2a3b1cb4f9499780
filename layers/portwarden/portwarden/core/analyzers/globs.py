"""The evidence scan shared by the language analyzers: glob sets over an image's paths.

Kept apart from the packages' construction (``_purl_lang``, which loads the models): a view's
evidence selections are asked again by name when kept cataloger results are checked, and an answer
on cached layers made without the models (``core.replay``) builds the glob set a selection names
(``evidence:`` and its patterns) from this module alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from portwarden.core.image import paths
from portwarden.core.image.capture import GlobPrefilter
from portwarden.core.image.resolver import FileResolver, register_selection
from portwarden.core.model.files import FileRecord, FileType

EVIDENCE_SELECTION_PREFIX = "evidence:"

CONTENT_TYPES = (FileType.FILE, FileType.HARDLINK)


class GlobSet:
    """Globs (syntax of ``core.image.paths``) as one regex, behind a cheap necessary condition.

    Each language analyzer looks through every path of the image for its evidence files, most of
    which match none. The prefilter (``capture.GlobPrefilter``: literal names, suffixes, heads)
    rejects those with a set lookup or a ``str.endswith`` before the regex is tried; when it only
    looks at the last component (``**/.../NAME`` globs, the usual shape), it is asked once per
    distinct file name of the image rather than once per path.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._regex: re.Pattern[str] | None = None
        self._prefilter = GlobPrefilter(self.patterns)
        # What names this set's evidence among a view's shared selections (``evidence``).
        self.selection_name = register_selection(
            EVIDENCE_SELECTION_PREFIX + "\0".join(self.patterns), self.evidence
        )

    @property
    def regex(self) -> re.Pattern[str]:
        """The globs as one regex, compiled on first use: the analyzers' GlobSets are made when their
        modules load, and an analysis asks for the regex of those with candidate paths only.
        (Two threads asking at once compile the same regex; either result is kept.)"""
        regex = self._regex
        if regex is None:
            regex = self._regex = re.compile(
                "|".join(f"(?:{paths.glob_to_regex(p).pattern})" for p in self.patterns)
            )
        return regex

    def match(self, path: str) -> re.Match[str] | None:
        return self.regex.match(path) if self._prefilter.may_match(path) else None

    def evidence(self, resolver: FileResolver) -> Iterator[FileRecord]:
        """The regular files of ``resolver`` whose path matches, in path order."""
        for path in self.candidates(resolver):
            if self.regex.match(path):
                record = resolver.record(path)
                if record is not None and record.type in CONTENT_TYPES:
                    yield record

    def candidates(self, resolver: FileResolver) -> Iterable[str]:
        """The paths of ``resolver`` that may match, in path order (a superset of the matches)."""
        if not self._prefilter.judges_last_component:
            return [p for p in resolver.sorted_paths() if self._prefilter.may_match(p)]
        by_name = resolver.paths_by_name()
        return sorted(path for name in self._prefilter.names_among(by_name.keys()) for path in by_name[name])


def compile_globs(patterns: Iterable[str]) -> GlobSet:
    """Matches any of ``patterns`` (glob syntax of ``core.image.paths``)."""
    return GlobSet(patterns)


def evidence_records(resolver: FileResolver, globs: GlobSet) -> tuple[FileRecord, ...]:
    """Regular files whose path matches ``globs``, in path order (content not checked).

    Found once per view and set of globs: an analyzer asks in ``applies`` and again in ``analyze``,
    and the look through the image's paths was most of what an analyzer with no evidence cost."""
    return resolver.selection(globs.selection_name, globs.evidence)


def has_evidence(resolver: FileResolver, globs: GlobSet) -> bool:
    return bool(evidence_records(resolver, globs))
