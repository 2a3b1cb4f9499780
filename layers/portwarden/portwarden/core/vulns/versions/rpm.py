"""RPM versions (``[epoch:]version[-release]``), ordered by rpmvercmp, including ``~`` and ``^``.

No maintained Python library implements rpmvercmp with caret support, so this is our own. Each of
epoch, version and release becomes a sort key once; comparing is a tuple comparison.

rpmvercmp, restated as tokens: separators (anything but ASCII letters, digits, ``~`` and ``^``) only
split; a version is a sequence of ``~``, ``^``, letter runs and digit runs; and the order of one token
against another, or against the end of the string, is::

    ~  <  end of string  <  ^  <  letter run (strcmp)  <  digit run (numeric)

so ``1.0~rc1 < 1.0 < 1.0^git1 < 1.0a < 1.0.1``.

Splitting follows osv-scalibr: the epoch is the part before the first ``:`` only if it is all digits
(a missing epoch is 0); the release is everything after the first ``-`` of the rest, and it keeps that
``-``, so ``1`` < ``1-`` (an empty release is lower than any present one).
"""

from __future__ import annotations

import re

from portwarden.core.vulns.versions.base import SortKeyComparator

_PRESENT = (0,)
_TILDE = (0,)
_END = (1,)
_CARET = (2,)
_LETTERS = 3
_DIGITS = 4

_TOKEN = re.compile(r"~|\^|[A-Za-z]+|[0-9]+")
# A well-formed EVR: optional numeric epoch, then version and release made of the characters rpm
# accepts (no whitespace, no second ``-`` in the release).
_VALID_EVR = re.compile(r"^(?:[0-9]+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$")

Token = tuple[int] | tuple[int, str] | tuple[int, int]
ComponentKey = tuple[Token, ...]
RpmKey = tuple[int, ComponentKey, ComponentKey]


def rpmvercmp_key(component: str) -> ComponentKey:
    """Sort key of one EVR component; an empty component sorts before every non-empty one."""
    if not component:
        return ()
    # A leading marker makes a present-but-token-less component ("-") sort above an absent one ("").
    tokens: list[Token] = [_PRESENT]
    for match in _TOKEN.finditer(component):
        text = match.group()
        if text == "~":
            tokens.append(_TILDE)
        elif text == "^":
            tokens.append(_CARET)
        elif text.isdigit():
            tokens.append((_DIGITS, int(text)))
        else:
            tokens.append((_LETTERS, text))
    tokens.append(_END)
    return tuple(tokens)


def split_evr(version: str) -> tuple[int, str, str]:
    """(epoch, version, release) as osv-scalibr splits them; the release keeps its leading ``-``."""
    epoch_text, colon, rest = version.partition(":")
    if not colon or not (epoch_text == "" or (epoch_text.isascii() and epoch_text.isdigit())):
        epoch_text, rest = "", version
    upstream, dash, release = rest.partition("-")
    return int(epoch_text or "0"), upstream, (dash + release)


class RpmComparator(SortKeyComparator):
    name = "rpm"

    def _parse(self, version: str) -> RpmKey:
        epoch, upstream, release = split_evr(version.strip())
        return epoch, rpmvercmp_key(upstream), rpmvercmp_key(release)

    def is_valid(self, version: str) -> bool:
        return _VALID_EVR.match(version.strip()) is not None
