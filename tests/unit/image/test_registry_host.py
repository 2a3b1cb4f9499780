"""Registry hosts as Docker accepts them: host name, IPv4 or [IPv6], optional port 1-65535."""

from __future__ import annotations

import pytest

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import ImageReference, parse_registry_host


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io", "ghcr.io"),
        ("GHCR.io", "ghcr.io"),
        ("localhost", "localhost"),
        ("localhost:5000", "localhost:5000"),
        ("registry.example.com:443", "registry.example.com:443"),
        ("my-registry.internal:1", "my-registry.internal:1"),
        ("127.0.0.1:65535", "127.0.0.1:65535"),
        ("[::1]", "[::1]"),
        ("[::1]:5000", "[::1]:5000"),
        ("[2001:DB8::1]:5000", "[2001:db8::1]:5000"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        ("  quay.io  ", "quay.io"),
    ],
)
def test_valid_hosts(text: str, expected: str) -> None:
    assert parse_registry_host(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http://host", "without a scheme"),
        ("https://ghcr.io", "without a scheme"),
        ("host/path", "without a path"),
        ("ghcr.io/", "without a path"),
        ("host:99999", "port '99999'"),
        ("host:0", "port '0'"),
        ("host:", "port ''"),
        ("host:http", "port 'http'"),
        ("host:\uff15\uff10\uff10\uff10", "port"),  # full-width digits
        ("h" * 1000, "1000 characters"),
        (".".join(["a" * 60] * 5), "at most 253"),
        ("a" * 64 + ".example", "1-63"),
        ("-bad.example", "label '-bad'"),
        ("bad-.example", "label 'bad-'"),
        ("under_score.example", "label 'under_score'"),
        ("two..dots", "empty label"),
        ("trailing.", "empty label"),
        ("", "empty"),
        ("user@host", "'@'"),
        ("ho st", "white space"),
        ("999.1.1.1", "not an IPv4 address"),
        ("::1", "brackets"),
        ("[::1", "brackets"),
        ("[::1]5000", "brackets"),
        ("[not:an:ip::x]", "not an IPv6 address"),
        ("exämple.com", "label"),
    ],
)
def test_invalid_hosts_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_registry_host(text)
    assert reason in str(caught.value)


def test_image_references_use_the_same_host_rules() -> None:
    assert ImageReference.parse("localhost:5000/app:1").registry == "localhost:5000"
    assert ImageReference.parse("[::1]:5000/app").registry == "[::1]:5000"
    for bad in ("host:99999/app", "-bad.example/app", "999.1.1.1/app"):
        with pytest.raises(InvalidReferenceError, match="invalid registry host"):
            ImageReference.parse(bad)
