from __future__ import annotations

import pytest

from portwarden.core.errors import InvalidPlatformError
from portwarden.core.image.platforms import parse_known_platform


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", ("linux", "amd64", None)),
        ("linux/arm64/v8", ("linux", "arm64", "v8")),
        ("linux/arm/v7", ("linux", "arm", "v7")),
        ("linux/arm/v6", ("linux", "arm", "v6")),
        ("linux/amd64/v3", ("linux", "amd64", "v3")),
        ("linux/ppc64le", ("linux", "ppc64le", None)),
        ("linux/s390x", ("linux", "s390x", None)),
        ("linux/riscv64", ("linux", "riscv64", None)),
        ("windows/amd64", ("windows", "amd64", None)),
    ],
)
def test_platforms_images_are_published_for_parse(text: str, expected: tuple[str, str, str | None]) -> None:
    platform = parse_known_platform(text)

    assert (platform.os, platform.architecture, platform.variant) == expected
    assert str(platform) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("beos/ppc", "unknown OS 'beos'"),
        ("linux/sparc", "unknown architecture 'sparc'"),
        ("linux/x86_64", "unknown architecture 'x86_64'"),
        ("linux/arm64/v99", "unknown arm64 variant 'v99'"),
        ("linux/386/v2", "unknown 386 variant 'v2' (known: none)"),
        ("linux", "expected OS/ARCH"),
        ("linux/amd64/v3/x", "expected OS/ARCH"),
        ("linux//amd64", "expected OS/ARCH"),
        ("", "expected OS/ARCH"),
        ("linux/" + "a" * 100, "longer than 64 characters"),
    ],
)
def test_anything_else_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidPlatformError) as raised:
        parse_known_platform(text)

    assert says in str(raised.value)
