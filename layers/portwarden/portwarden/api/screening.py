"""Hostile-input screening of a request before any route, validator or JSON parser sees it.

Python's own parsers fail in ways that are not client errors unless they are stopped first: deeply
nested JSON raises ``RecursionError``, an integer of thousands of digits ``ValueError`` (CPython's
int-string conversion limit), a bad base64 body ``binascii.Error``, and a lone surrogate in a path,
query or body string ``UnicodeEncodeError`` as soon as it is encoded (logging, a store, the error
body echoing it). Each of those is the client's mistake and answers 400 here, naming what was wrong;
an oversized body answers 413. The checks are linear in the size of the request and stop at the
first violation; bodies are bounded before they are decoded, scanned or parsed.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import operator
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MiB = 1024 * 1024

# A JSON string literal, replaced by "" before structure and numbers are examined. A string runs to
# its closing quote *or to the end of the text*, so an unterminated one is consumed once instead of
# being retried from every quote inside it; possessive quantifiers rule out backtracking. Linear.
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]++|\\(?:.|\Z))*+(?:"|\Z)', re.DOTALL)
# Byte tables for the C-speed passes: digits → "0", anything else → " "; brackets → 2 (open) or 0
# (close), everything else deleted.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_BRACKET_LEVELS = bytes(2 if byte in b"[{" else 0 for byte in range(256))
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# A \uD800-\uDFFF escape: only then can the parsed strings hold a surrogate (raw ones are refused
# before, as text that is not UTF-8 encodable).
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on a request; the defaults are far above any body the API takes."""

    # API Gateway's own payload limit is 10 MB; our largest bodies (policy bundles) stay well below.
    max_body_bytes: int = 2 * MiB
    # Policy bundles, the most nested documents the API takes, are about 6 levels deep.
    max_json_depth: int = 64
    # No field the API takes needs more; CPython refuses to convert more than 4300 digits anyway.
    max_number_digits: int = 100


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused before routing."""

    status: HTTPStatus
    error_type: str
    message: str


def screen_request(event: Mapping[str, Any], limits: RequestLimits) -> dict[str, Any] | Rejection:
    """The event to route (a base64 body decoded to text), or why it is refused."""
    rejection = _unencodable_text(event)
    if rejection is not None:
        return rejection
    body = event.get("body")
    if body is None or body == "":
        return dict(event)
    if not isinstance(body, str):
        return Rejection(HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "the request body must be text")
    # A base64 body is 4/3 of its content: bound it before decoding.
    if len(body) > limits.max_body_bytes * (4 / 3 if event.get("isBase64Encoded") else 1) + 4:
        return _too_large(limits)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return Rejection(
                HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "the request body is not valid base64"
            )
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(
                HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "the request body is not UTF-8 text"
            )
    if len(body.encode("utf-8", errors="surrogatepass")) > limits.max_body_bytes:
        return _too_large(limits)
    rejection = _unsafe_json(body, limits)
    if rejection is not None:
        return rejection
    screened = dict(event)
    screened["body"] = body
    screened["isBase64Encoded"] = False
    return screened


def _too_large(limits: RequestLimits) -> Rejection:
    return Rejection(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "RequestTooLarge",
        f"the request body exceeds {limits.max_body_bytes} bytes",
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings_of(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value (keys too), without recursion (depth is checked later)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


_REQUEST_TEXT_FIELDS = (
    ("path", "path"),
    ("pathParameters", "path"),
    ("queryStringParameters", "query"),
    ("multiValueQueryStringParameters", "query"),
    ("headers", "header"),
    ("multiValueHeaders", "header"),
)


def _unencodable_text(event: Mapping[str, Any]) -> Rejection | None:
    """A lone surrogate anywhere in the path, query or headers (raw, not JSON-escaped)."""
    for field, what in _REQUEST_TEXT_FIELDS:
        if not all(_encodable(text) for text in _strings_of(event.get(field))):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestText",
                f"the request {what} is not valid Unicode text (lone surrogate)",
            )
    body = event.get("body")
    if isinstance(body, str) and not _encodable(body):
        return Rejection(
            HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "the request body is not valid Unicode text"
        )
    return None


def _unsafe_json(body: str, limits: RequestLimits) -> Rejection | None:
    """Number length and nesting, checked on the text before any parser runs; then, only when the
    text has surrogate escapes, the strings of the (now safely) parsed document.

    Both checks first run on the whole text in C (byte translation, substring search, iterator
    arithmetic). Counting brackets and digits inside strings too can only overstate depth and
    length, so a body that passes this way is safe; only one that fails is checked again with its
    strings removed, so text inside strings is never taken for structure. A body at the size limit is
    screened in well under a second whatever its shape (``bench/api_screening.py``). A body that is
    not JSON at all passes: the route's validation answers for it.
    """
    data = body.encode("utf-8")
    if _has_long_number(data, limits) or _deeper_than(data, limits.max_json_depth):
        structure = _JSON_STRING_RE.sub('""', body).encode("utf-8")
        if _has_long_number(structure, limits):
            return _number_too_long(limits)
        if _deeper_than(structure, limits.max_json_depth):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestBody",
                f"the request body nests deeper than {limits.max_json_depth} levels",
            )
    if not _SURROGATE_ESCAPE_RE.search(body):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not all(_encodable(text) for text in _strings_of(document)):
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "InvalidRequestBody",
            "a string in the request body is not valid Unicode text (lone surrogate escape)",
        )
    return None


def _has_long_number(data: bytes, limits: RequestLimits) -> bool:
    return b"0" * (limits.max_number_digits + 1) in data.translate(_DIGITS_ONLY)


def _deeper_than(data: bytes, max_depth: int) -> bool:
    """Whether the brackets of ``data`` ever stand more than ``max_depth`` deep.

    With openers as 2 and closers as 0, the running sum minus the position is the depth after each
    bracket; openers never closed count too (a parser would descend into them before failing).
    """
    levels = data.translate(_BRACKET_LEVELS, _NOT_BRACKETS)
    if levels.count(2) <= max_depth:
        return False
    deepest: int = max(map(operator.sub, itertools.accumulate(levels), itertools.count(1)))
    return deepest > max_depth


def _number_too_long(limits: RequestLimits) -> Rejection:
    return Rejection(
        HTTPStatus.BAD_REQUEST,
        "InvalidRequestBody",
        f"a number in the request body has more than {limits.max_number_digits} digits",
    )
