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
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MiB = 1024 * 1024

# The characters that change JSON's structure or string state. One pass over their matches (a
# single character class: linear, no backtracking) tells strings from structure.
_SIGNIFICANT_RE = re.compile(r'[\\"\[\]{}]')


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
    """Nesting and number length, checked on the text; then surrogates in the (now safely) parsed strings.

    A body that is not JSON at all passes: the route's validation answers for it.
    """
    long_number = re.compile(rf"[0-9]{{{limits.max_number_digits + 1}}}")
    depth = 0
    in_string = False
    escaped_at = -1
    outside_from = 0  # where the current run of text outside strings began
    for match in _SIGNIFICANT_RE.finditer(body):
        position = match.start()
        if position == escaped_at:
            continue
        character = match.group()
        if in_string:
            if character == "\\":
                escaped_at = position + 1
            elif character == '"':
                in_string = False
                outside_from = position + 1
            continue
        if long_number.search(body, outside_from, position):
            return _number_too_long(limits)
        outside_from = position + 1
        if character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            if depth > limits.max_json_depth:
                return Rejection(
                    HTTPStatus.BAD_REQUEST,
                    "InvalidRequestBody",
                    f"the request body nests deeper than {limits.max_json_depth} levels",
                )
        elif character in "]}":
            depth -= 1
    if not in_string and long_number.search(body, outside_from):
        return _number_too_long(limits)
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


def _number_too_long(limits: RequestLimits) -> Rejection:
    return Rejection(
        HTTPStatus.BAD_REQUEST,
        "InvalidRequestBody",
        f"a number in the request body has more than {limits.max_number_digits} digits",
    )
