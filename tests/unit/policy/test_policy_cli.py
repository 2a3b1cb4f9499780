"""`portwarden policy add|validate|list|get|activate|gates` against the local store (exit codes, JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.policy.policy_factories import one_rule_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "policy"
DEFAULT_BUNDLE = FIXTURES / "anchore_default_bundle.json"
DEFAULT_ID = "2c53a13c-1765-11e8-82ef-23527761d060"


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        timeout=60,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def write(tmp_path: Path, name: str, document: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_add_list_get_activate(tmp_path: Path, home: Path) -> None:
    added = run_cli("policy", "add", str(DEFAULT_BUNDLE), home=home)
    assert added.returncode == 0, added.stderr
    assert f"added {DEFAULT_ID}" in added.stdout
    other = write(tmp_path, "other.json", one_rule_bundle("always", "always"))
    assert run_cli("policy", "add", str(other), "--activate", home=home).returncode == 0

    listed = run_cli("policy", "list", "-o", "json", home=home)
    assert listed.returncode == 0, listed.stderr
    rows = {row["bundle_id"]: row["active"] for row in json.loads(listed.stdout)}
    assert rows == {DEFAULT_ID: False, "test-bundle": True}

    activated = run_cli("policy", "activate", DEFAULT_ID, home=home)
    assert activated.returncode == 0, activated.stderr
    rows = {
        row["bundle_id"]: row["active"]
        for row in json.loads(run_cli("policy", "list", "-o", "json", home=home).stdout)
    }
    assert rows == {DEFAULT_ID: True, "test-bundle": False}

    got = run_cli("policy", "get", DEFAULT_ID, home=home)
    assert got.returncode == 0, got.stderr
    document = json.loads(got.stdout)
    # stored in Anchore's spelling, the legacy policy_id normalized to policy_ids
    assert document["id"] == DEFAULT_ID
    assert document["mappings"][0]["policy_ids"] == ["48e6f7d6-1765-11e8-b5f9-8b6f228548b6"]
    assert len(document["policies"][0]["rules"]) == 6
    assert document["policies"][0]["rules"][0]["action"] == "STOP"
    detail = json.loads(run_cli("policy", "get", DEFAULT_ID, "--detail", home=home).stdout)
    assert detail["active"] is True and detail["document"] == document

    table = run_cli("policy", "list", home=home)
    assert table.returncode == 0 and "test-bundle" in table.stdout


def test_missing_bundles_exit_2(home: Path) -> None:
    for args in (("policy", "get", "nope"), ("policy", "activate", "nope")):
        result = run_cli(*args, home=home)
        assert result.returncode == 2
        assert "no policy bundle nope" in result.stderr


def test_invalid_bundle_lists_every_problem_and_is_not_stored(tmp_path: Path, home: Path) -> None:
    document = one_rule_bundle("vulnerabilities", "package", {"severity": "hgh"})
    path = write(tmp_path, "bad.json", document)
    for command in ("validate", "add"):
        result = run_cli("policy", command, str(path), home=home)
        assert result.returncode == 2
        assert "2 problems" in result.stderr
        assert (
            "rule 'r1' (gate 'vulnerabilities', trigger 'package'): parameter 'package_type' is required"
            in (result.stderr)
        )
        assert "parameter 'severity'" in result.stderr
    assert json.loads(run_cli("policy", "list", "-o", "json", home=home).stdout) == []


def test_validate_a_good_bundle(home: Path) -> None:
    result = run_cli("policy", "validate", str(DEFAULT_BUNDLE), home=home)
    assert result.returncode == 0, result.stderr
    assert f"{DEFAULT_ID}: valid" in result.stdout


def test_gates_lists_the_contract(home: Path) -> None:
    result = run_cli("policy", "gates", "-o", "json", home=home)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    package = next(r for r in rows if (r["gate"], r["trigger"]) == ("vulnerabilities", "package"))
    required = {p["name"] for p in package["params"] if p["required"]}
    assert required == {"package_type"}
    assert ("always", "always") in {(r["gate"], r["trigger"]) for r in rows}
