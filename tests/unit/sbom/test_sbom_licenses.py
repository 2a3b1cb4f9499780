"""Classifying declared license strings against the SPDX license list."""

from __future__ import annotations

import pytest

from portwarden.core.sbom.licenses import (
    LicenseKind,
    LicenseRefAllocator,
    classify_license,
    combined_expression,
    license_ref_idstring,
)


@pytest.mark.parametrize(
    ("text", "kind", "spdx"),
    [
        ("MIT", LicenseKind.SPDX_ID, "MIT"),
        ("mit", LicenseKind.SPDX_ID, "MIT"),
        ("BSD-3-clause", LicenseKind.SPDX_ID, "BSD-3-Clause"),
        ("GPL-2.0+", LicenseKind.SPDX_ID, "GPL-2.0-or-later"),
        ("(Apache-2.0)", LicenseKind.SPDX_ID, "Apache-2.0"),
        ("MIT OR Apache-2.0", LicenseKind.SPDX_EXPRESSION, "MIT OR Apache-2.0"),
        (
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            LicenseKind.SPDX_EXPRESSION,
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
        ),
        ("GPL-2+", LicenseKind.OTHER, None),
        ("Apache License, Version 2.0", LicenseKind.OTHER, None),
        ("MIT AND Frobnicate", LicenseKind.OTHER, None),
        ("Classpath-exception-2.0", LicenseKind.OTHER, None),
        ("", LicenseKind.OTHER, None),
    ],
)
def test_classify_license(text: str, kind: LicenseKind, spdx: str | None) -> None:
    classified = classify_license(text)
    assert classified.kind is kind
    assert classified.spdx == spdx
    assert classified.text == text


def test_combined_expression_joins_with_and_and_keeps_precedence() -> None:
    refs = LicenseRefAllocator()
    assert (
        combined_expression(["MIT OR Apache-2.0", "BSD-3-Clause"], refs)
        == "(MIT OR Apache-2.0) AND BSD-3-Clause"
    )
    assert combined_expression(["mit"], refs) == "MIT"
    assert combined_expression(["MIT OR Apache-2.0"], refs) == "MIT OR Apache-2.0"
    assert combined_expression(["MIT", "MIT", " "], refs) == "MIT"
    assert combined_expression([], refs) is None
    assert refs.allocated == {}


def test_free_text_licenses_become_license_refs() -> None:
    refs = LicenseRefAllocator()
    assert combined_expression(["MIT", "Public Domain"], refs) == "MIT AND LicenseRef-Public-Domain"
    assert refs.allocated == {"LicenseRef-Public-Domain": "Public Domain"}


def test_license_refs_are_distinct_for_distinct_texts() -> None:
    refs = LicenseRefAllocator()
    first = refs.ref_for("GPL 2")
    second = refs.ref_for("GPL-2")
    assert first == "LicenseRef-GPL-2"
    assert second.startswith("LicenseRef-GPL-2-")
    assert second != first
    assert refs.ref_for("GPL 2") == first
    assert refs.allocated == {first: "GPL 2", second: "GPL-2"}


def test_license_ref_idstring_uses_only_allowed_characters() -> None:
    assert license_ref_idstring("Apache License, Version 2.0") == "Apache-License-Version-2.0"
    assert license_ref_idstring("LicenseRef-custom") == "custom"
    assert license_ref_idstring("©®") == "unknown"


def test_a_whole_license_text_gets_a_short_unique_ref() -> None:
    text = "Permission is hereby granted, free of charge, to any person obtaining a copy " * 20
    idstring = license_ref_idstring(text)
    assert len(idstring) <= 64
    assert idstring.startswith("Permission-is-hereby-granted")
    assert idstring != license_ref_idstring(text + "and more")
    refs = LicenseRefAllocator()
    assert combined_expression([text], refs) == f"LicenseRef-{idstring}"
    assert refs.allocated == {f"LicenseRef-{idstring}": text}
