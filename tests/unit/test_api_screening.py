"""The request screen on its own: exact limits, and text inside strings never taken for structure."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from portwarden.api.screening import Rejection, RequestLimits, screen_request

LIMITS = RequestLimits()


def screened(body: str) -> dict[str, object] | Rejection:
    return screen_request({"httpMethod": "POST", "path": "/x", "body": body}, LIMITS)


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "[1]" + "}" * (depth - 1)


def test_nesting_up_to_the_limit_passes_and_one_more_level_is_refused() -> None:
    assert json.loads(nested(64))  # the sample is valid JSON, 64 levels deep

    assert not isinstance(screened(nested(64)), Rejection)
    refused = screened(nested(65))
    assert isinstance(refused, Rejection) and refused.status == HTTPStatus.BAD_REQUEST
    assert "nests deeper than 64 levels" in refused.message


def test_openers_never_closed_are_refused_like_deep_nesting() -> None:
    refused = screened("[" * 100_000)

    assert isinstance(refused, Rejection) and "nests deeper" in refused.message


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"text": "[" * 1000}),
        json.dumps({"text": '"' + "{" * 1000}),  # an escaped quote does not end the string
        json.dumps({"text": "\\" + "[" * 1000}),  # nor does an escaped backslash start structure
        json.dumps([{"a": [1, 2, {"b": "]]]]"}]} for _ in range(5000)]),  # wide, shallow
    ],
    ids=["brackets", "escaped-quote", "escaped-backslash", "wide"],
)
def test_brackets_inside_strings_or_in_wide_documents_are_not_depth(body: str) -> None:
    assert not isinstance(screened(body), Rejection)


def test_numbers_up_to_the_digit_limit_pass_and_longer_ones_are_refused() -> None:
    assert not isinstance(screened(json.dumps({"n": int("9" * 100), "f": -1.5e300})), Rejection)

    refused = screened('{"n": ' + "9" * 101 + "}")
    fraction = screened('{"n": 0.' + "1" * 101 + "}")
    assert isinstance(refused, Rejection) and "more than 100 digits" in refused.message
    assert isinstance(fraction, Rejection)


def test_digits_inside_strings_are_text() -> None:
    assert not isinstance(screened(json.dumps({"id": "1" * 5000})), Rejection)


def test_an_unterminated_string_hides_nothing() -> None:
    # The string runs to the end of the text: nothing after its quote is structure, and the body
    # (invalid JSON) is left for the route's validation to refuse.
    assert not isinstance(screened('{"a": "' + "[" * 1000), Rejection)
    # Escaped quotes and brackets, ending in a lone backslash: the exact pass strips this in one
    # linear match (a pattern retried from every quote would take minutes here).
    assert not isinstance(screened('"' + '\\"[' * 200_000 + "\\"), Rejection)


def test_surrogate_pairs_pass_and_lone_surrogate_escapes_are_refused() -> None:
    assert not isinstance(screened('{"a": "\\ud83d\\ude00"}'), Rejection)
    for body in ('{"a": "\\ud800"}', '{"a": "\\udc00x"}', '{"\\udbff": 1}'):
        refused = screened(body)
        assert isinstance(refused, Rejection) and "lone surrogate" in refused.message, body


def test_a_body_that_is_not_json_passes_to_the_route() -> None:
    assert not isinstance(screened("grant_type=password&username=admin"), Rejection)


def test_the_size_limit_applies_to_the_decoded_body() -> None:
    limits = RequestLimits(max_body_bytes=1000)
    body = json.dumps({"a": "é" * 600})  # 600 characters, 1200 bytes

    refused = screen_request({"body": body}, limits)

    assert isinstance(refused, Rejection) and refused.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
