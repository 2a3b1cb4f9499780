"""Hostile policy bundles: size, nesting, huge numbers, lone surrogates; `validate` and `add` agree."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from portwarden.cli import main
from portwarden.core.errors import PolicyBundleError
from portwarden.core.policy.bundle import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_DEPTH,
    MAX_INTEGER_DIGITS,
    load_bundle,
    parse_bundle,
)
from tests.unit.policy.policy_factories import one_rule_bundle


def problems_of(data: bytes | str | dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(PolicyBundleError) as caught:
        load_bundle(data)
    return caught.value.problems


def valid_text() -> str:
    return json.dumps(one_rule_bundle("dockerfile", "exposed_ports", {"ports": "22", "type": "blacklist"}))


def test_a_valid_bundle_still_loads() -> None:
    assert load_bundle(valid_text()).bundle.id == "test-bundle"
    assert load_bundle(valid_text().encode("utf-16")).bundle.id == "test-bundle"


def test_deep_nesting_is_refused_before_the_decoder_recurses() -> None:
    deep = '{"id": "x", "policies": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (problem,) = problems_of(deep)
    assert f"nested more than {MAX_BUNDLE_DEPTH} levels" in problem
    # Brackets inside strings are text, not nesting.
    document = json.loads(valid_text())
    document["name"] = "[" * 1000 + "{" * 1000
    assert load_bundle(json.dumps(document)).bundle.name == "[" * 1000 + "{" * 1000


def test_nesting_within_the_limit_is_judged_on_its_content() -> None:
    document = json.loads(valid_text())
    nested: Any = []
    for _ in range(MAX_BUNDLE_DEPTH - 3):
        nested = [nested]
    document["extra"] = nested
    # Past the nesting check: the model's own validation speaks (or accepts the extra field).
    try:
        load_bundle(json.dumps(document))
    except PolicyBundleError as exc:
        assert not any("nested" in p for p in exc.problems)


def test_a_decoded_document_is_bounded_too() -> None:
    """API bodies arrive decoded: the same limits apply to the mapping."""
    nested: Any = "leaf"
    for _ in range(MAX_BUNDLE_DEPTH + 5):
        nested = {"n": nested}
    (problem,) = problems_of({"id": "x", "deep": nested})
    assert "nested more than" in problem
    assert any("too large" in p for p in problems_of({"id": "x", "count": 10**200}))


def test_huge_integers_are_refused_without_converting_them() -> None:
    (problem,) = problems_of('{"id": "x", "policies": ' + "9" * 5000 + "}")
    assert "5,000 digits" in problem and str(MAX_INTEGER_DIGITS) in problem
    (negative,) = problems_of('{"id": "x", "n": -' + "9" * 50 + "}")
    assert "50 digits" in negative


def test_non_json_constants_are_refused() -> None:
    (problem,) = problems_of('{"id": "x", "n": NaN}')
    assert "NaN is not a JSON value" in problem


def test_size_is_capped_before_parsing() -> None:
    padded = valid_text()[:-1] + ', "padding": "' + "x" * MAX_BUNDLE_BYTES + '"}'
    (problem,) = problems_of(padded.encode())
    assert "at most" in problem and f"{MAX_BUNDLE_BYTES:,}" in problem


@pytest.mark.parametrize(
    ("field", "escaped"),
    [("name", "\\ud800"), ("name", "x\\udfff"), ("comment", "\\udc00 tail")],
)
def test_lone_surrogates_are_refused_where_they_are(field: str, escaped: str) -> None:
    text = valid_text()[:-1] + f', "{field}": "{escaped}"}}'
    problems = problems_of(text)
    assert any(p.startswith(f"{field}: holds a lone surrogate") for p in problems), problems


def test_lone_surrogates_deep_inside_and_in_keys() -> None:
    document = json.loads(valid_text())
    document["policies"][0]["rules"][0]["params"][0]["value"] = "\ud83d"
    problems = problems_of(document)
    assert any(p.startswith("policies[0].rules[0].params[0].value: holds a lone surrogate") for p in problems)
    assert any("a key holds a lone surrogate" in p for p in problems_of({"id": "x", "\udc80": 1}))


def test_a_proper_surrogate_pair_is_fine() -> None:
    text = valid_text()[:-1] + ', "name": "\\ud83d\\udc4d"}'
    assert parse_bundle(text).name == "👍"


# ---- the CLI: validate and add give the same verdict ------------------------------------------


def cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["portwarden", *argv])
    code: object = 0
    try:
        main.run()
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 0), captured.out + captured.err


HOSTILE = {
    "nested": '{"id": "x", "policies": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "huge-integer": '{"id": "x", "policies": ' + "1" * 5000 + "}",
    "surrogate": valid_text()[:-1] + ', "name": "\\ud800"}',
    "not-json": "{",
    "unknown-gate": json.dumps(one_rule_bundle("nope", "nope")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_validate_and_add_agree_on_hostile_bundles(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    bundle = tmp_path / f"{name}.json"
    bundle.write_text(HOSTILE[name])
    validated, validate_output = cli(["policy", "validate", str(bundle)], monkeypatch, capsys)
    added, add_output = cli(["policy", "add", str(bundle)], monkeypatch, capsys)
    assert validated == added == 2
    assert validate_output == add_output  # the same problems, word for word
    assert "unexpected error" not in add_output and "Traceback" not in add_output
    listed, listing = cli(["policy", "list", "-o", "json"], monkeypatch, capsys)
    assert listed == 0 and json.loads(listing) == []


def test_a_bundle_that_validates_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "ok.json"
    bundle.write_text(valid_text()[:-1] + ', "name": "caf\\u00e9 \\ud83d\\udc4d [bold]x[/bold]"}')
    assert cli(["policy", "validate", str(bundle)], monkeypatch, capsys)[0] == 0
    assert cli(["policy", "add", str(bundle)], monkeypatch, capsys)[0] == 0
    code, table = cli(["policy", "list"], monkeypatch, capsys)
    assert code == 0 and "café 👍 [bold]x[/bold]" in table


def test_an_oversized_file_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "big.json"
    with bundle.open("wb") as handle:  # sparse: 48 MB on paper, nothing on disk
        handle.truncate(48 * 1024 * 1024)
    code, text = cli(["policy", "validate", str(bundle)], monkeypatch, capsys)
    assert code == 2 and "50,331,648 bytes" in text and f"at most {MAX_BUNDLE_BYTES:,}" in text
    # `scan --policy FILE` and `policy eval --bundle FILE` read through the same bounded reader.
    from portwarden.cli.commands_scan import resolve_bundle

    with pytest.raises(PolicyBundleError, match="at most"):
        resolve_bundle(str(bundle), None)  # type: ignore[arg-type]


def test_an_unreadable_bundle_file_is_a_clear_error(tmp_path: Path) -> None:
    from portwarden.cli.commands_scan import resolve_bundle

    with pytest.raises(PolicyBundleError, match=r"cannot read .*missing\.json: No such file"):
        resolve_bundle(str(tmp_path / "missing.json"), None)  # type: ignore[arg-type]
    with pytest.raises(PolicyBundleError, match="cannot read"):
        resolve_bundle(str(tmp_path), None)  # type: ignore[arg-type]
