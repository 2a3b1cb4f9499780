"""`scan sbom:FILE`, `--vex`, ignore rules, `--show-suppressed`, `-o openvex`, `policy eval --vex` and
`explain`, end to end through the command line against the example image and example feeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES_DIR, fixture_files

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FEEDS = REPO_ROOT / "examples" / "feeds"


def run_cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PORTWARDEN_HOME": str(home),
            "PYTHONPATH": str(REPO_ROOT / "layers" / "portwarden"),
        },
        timeout=120,
        check=False,
        cwd=cwd or REPO_ROOT,
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    destination = tmp_path_factory.mktemp("image") / "tiny"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "build_example.py"), str(destination)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return f"oci-dir:{destination}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    feeds = tmp_path_factory.mktemp("feeds")
    subprocess.run([sys.executable, str(EXAMPLE_FEEDS / "build_feeds.py"), str(feeds)], check=True)
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


def scan_json(home: Path, source: str, *extra: str, cwd: Path | None = None) -> dict[str, Any]:
    result = run_cli(home, "scan", source, "-o", "json", *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def image_scan(home: Path, image: str) -> dict[str, Any]:
    return scan_json(home, image)


def _sorted(vulnerabilities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(vulnerabilities, key=lambda v: (v["id"], v["package"]["name"], v["package"]["version"]))


def _write_openvex(path: Path, digest: str, *statements: dict[str, Any]) -> Path:
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/tiny",
        "author": "security@example.test",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": list(statements),
    }
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def vex_file(tmp_path_factory: pytest.TempPathFactory, image_scan: dict[str, Any]) -> Path:
    """libssl3's CVE-2023-5363 not_affected for the image (by digest); lodash fixed by an alias, by purl."""
    digest = image_scan["source"]["manifest_digest"]
    return _write_openvex(
        tmp_path_factory.mktemp("vex") / "tiny.openvex.json",
        digest,
        {
            "vulnerability": {"name": "CVE-2023-5363"},
            "products": [
                {"@id": f"pkg:oci/tiny@{digest}", "subcomponents": [{"@id": "pkg:deb/debian/libssl3"}]}
            ],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        },
        {
            "vulnerability": {"name": "CVE-2021-23337"},
            "products": [{"@id": "pkg:npm/lodash@4.17.20"}],
            "status": "not_affected",
            "impact_statement": "template() is never called",
        },
    )


# ---- SBOM input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("document_format", ["json", "cyclonedx-json", "spdx-json"])
def test_scanning_the_sbom_portwarden_wrote_gives_the_same_matches(
    home: Path, image: str, image_scan: dict[str, Any], tmp_path: Path, document_format: str
) -> None:
    written = run_cli(home, "sbom", image, "-o", document_format)
    assert written.returncode == 0, written.stderr
    sbom = tmp_path / f"tiny.{document_format}"
    sbom.write_text(written.stdout)
    document = scan_json(home, f"sbom:{sbom}")
    assert document["vulnerabilities"], "the example image has vulnerabilities"
    assert _sorted(document["vulnerabilities"]) == _sorted(image_scan["vulnerabilities"])
    assert document["source"]["manifest_digest"] == image_scan["source"]["manifest_digest"]
    assert document["source"]["type"] == "sbom"


@pytest.mark.parametrize(
    "path", fixture_files(FIXTURES_DIR / "sbom", "tiny.syft*.json"), ids=lambda p: p.name
)
def test_scanning_syft_sboms_gives_the_same_matches_for_packages_both_report(
    home: Path, image_scan: dict[str, Any], path: Path
) -> None:
    document = scan_json(home, f"sbom:{path}")

    def key(v: dict[str, Any]) -> tuple[str, ...]:
        package = v["package"]
        return (
            v["id"],
            package["name"],
            package["version"],
            package["type"],
            v["fix"]["state"],
            v["severity"],
        )

    ours = {(p["name"], p["version"], p["type"]) for p in image_scan["packages"]}
    theirs = {
        key(v)
        for v in document["vulnerabilities"]
        if (v["package"]["name"], v["package"]["version"], v["package"]["type"]) in ours
    }
    assert theirs == {key(v) for v in image_scan["vulnerabilities"]}
    # The SBOM names the image's digest; the image's own (richer) analysis stays the stored one.
    stored = run_cli(home, "image", "get", image_scan["source"]["manifest_digest"], "-o", "json")
    assert stored.returncode == 0, stored.stderr
    record = json.loads(stored.stdout)
    assert record["source"].startswith("oci-dir:") and record["package_count"] == len(image_scan["packages"])


def test_bad_sboms_fail_with_one_line_and_skipped_packages_warn(home: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("this is not json")
    result = run_cli(home, "scan", f"sbom:{garbage}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "is not JSON" in result.stderr
    old = tmp_path / "old.cdx.json"
    old.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.2", "components": []}))
    result = run_cli(home, "scan", f"sbom:{old}")
    assert result.returncode == 2 and "CycloneDX spec version 1.2 is not supported" in result.stderr

    partial = tmp_path / "partial.cdx.json"
    partial.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "components": [
                    {
                        "type": "library",
                        "name": "lodash",
                        "version": "4.17.20",
                        "purl": "pkg:npm/lodash@4.17.20",
                    },
                    {"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad"},
                ],
            }
        )
    )
    result = run_cli(home, "scan", f"sbom:{partial}", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "warning: skipped package left-pad (pkg:npm/left-pad): no version" in result.stderr
    assert {v["id"] for v in json.loads(result.stdout)["vulnerabilities"]} == {
        "GHSA-35jh-r3h4-6jhm",
        "GHSA-29mw-wpgm-hmr9",
    }


# ---- VEX and ignore rules --------------------------------------------------------------------------------


def test_vex_suppresses_keeps_the_matches_visible_and_fail_on_counts_the_rest(
    home: Path, image: str, image_scan: dict[str, Any], vex_file: Path
) -> None:
    document = scan_json(home, image, "--vex", str(vex_file))
    reported = {v["id"] for v in document["vulnerabilities"]}
    suppressed = {v["id"]: v for v in document["suppressed"]}
    assert set(suppressed) == {"CVE-2023-5363", "GHSA-35jh-r3h4-6jhm"}
    assert reported | set(suppressed) == {v["id"] for v in image_scan["vulnerabilities"]}
    assert not reported & set(suppressed)
    (reason,) = suppressed["CVE-2023-5363"]["suppressed_by"]
    assert (
        reason["kind"] == "vex"
        and reason["statement"]["justification"] == "vulnerable_code_not_in_execute_path"
    )
    assert suppressed["GHSA-35jh-r3h4-6jhm"]["package"]["name"] == "lodash"

    # lodash's High finding is the only one at or above high: suppressed, --fail-on no longer fires.
    assert run_cli(home, "scan", image, "--fail-on", "high").returncode == 1
    cleared = run_cli(home, "scan", image, "--fail-on", "high", "--vex", str(vex_file))
    assert cleared.returncode == 0, cleared.stderr
    assert "2 suppressed by VEX or ignore rules (--show-suppressed to list them)" in cleared.stdout
    listed = run_cli(home, "scan", image, "--vex", str(vex_file), "--show-suppressed")
    assert listed.returncode == 0
    assert (
        "Suppressed" in listed.stdout and "not_affected" in listed.stdout and "statement 1" in listed.stdout
    )


def test_policy_eval_counts_only_what_is_not_suppressed(home: Path, image: str, vex_file: Path) -> None:
    stopped = run_cli(home, "policy", "eval", image, "--bundle", "default", "-o", "json")
    assert stopped.returncode == 1
    assert any("GHSA-35jh-r3h4-6jhm" in r["trigger_id"] for r in json.loads(stopped.stdout)["results"])
    passed = run_cli(
        home, "policy", "eval", image, "--bundle", "default", "-o", "json", "--vex", str(vex_file)
    )
    assert passed.returncode == 0, passed.stderr
    report = json.loads(passed.stdout)
    assert report["final_action"] != "stop"
    assert not any("GHSA-35jh-r3h4-6jhm" in r["trigger_id"] for r in report["results"])


def test_ignore_rules_from_the_working_directory_and_from_config(
    home: Path, image: str, tmp_path: Path
) -> None:
    (tmp_path / ".portwarden.yaml").write_text(
        "ignore:\n"
        "  - fix-state: wont-fix\n    reason: Debian will not fix; accepted\n"
        "  - vulnerability: CVE-2010-0928\n    reason: expired acceptance\n    expires: 2020-01-01\n"
    )
    result = run_cli(home, "scan", image, "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (suppressed,) = document["suppressed"]
    assert suppressed["id"] == "CVE-2023-45853" and suppressed["fix"]["state"] == "wont-fix"
    assert suppressed["suppressed_by"][0]["reason"].endswith("Debian will not fix; accepted")
    assert "CVE-2010-0928" in {v["id"] for v in document["vulnerabilities"]}
    assert "ignore rule 1 expired on 2020-01-01: not applied" in result.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("ignore:\n  - vulnerability: CVE-2010-0928\n")
    refused = run_cli(home, "scan", image, "--config", str(bad))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "ignore rule 0: reason: Field required" in refused.stderr


def test_openvex_output_describes_the_findings_and_reads_back(
    home: Path, image: str, image_scan: dict[str, Any], vex_file: Path, tmp_path: Path
) -> None:
    result = run_cli(home, "scan", image, "-o", "openvex", "--vex", str(vex_file))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["@context"] == "https://openvex.dev/ns/v0.2.0"
    statuses = {s["vulnerability"]["name"]: s["status"] for s in document["statements"]}
    assert statuses == {
        "CVE-2023-5363": "not_affected",
        "GHSA-35jh-r3h4-6jhm": "not_affected",
        **{
            v["id"]: "affected"
            for v in image_scan["vulnerabilities"]
            if v["id"] not in ("CVE-2023-5363", "GHSA-35jh-r3h4-6jhm")
        },
    }
    digest = image_scan["source"]["manifest_digest"]
    assert all(s["products"][0]["@id"] == digest for s in document["statements"])
    written = tmp_path / "findings.openvex.json"
    written.write_text(result.stdout)
    replay = scan_json(home, image, "--vex", str(written))
    assert {v["id"] for v in replay["suppressed"]} == {"CVE-2023-5363", "GHSA-35jh-r3h4-6jhm"}
    assert all(v.get("vex", {}).get("status") == "affected" for v in replay["vulnerabilities"])


# ---- explain ---------------------------------------------------------------------------------------------


def test_explain_json_gives_the_evidence_of_each_match(home: Path, image: str, vex_file: Path) -> None:
    result = run_cli(home, "explain", image, "--id", "CVE-2023-5363", "--vex", str(vex_file), "-o", "json")
    assert result.returncode == 0, result.stderr
    explanation = json.loads(result.stdout)
    assert explanation["vulnerability_id"] == "CVE-2023-5363" and explanation["known_to_database"]
    (match,) = explanation["matches"]
    assert match["suppressed"] is True
    package = match["package"]
    assert (package["name"], package["source_package"], package["found_by"]) == ("libssl3", "openssl", "dpkg")
    status = package["found_in"][0]
    assert status["path"] == "/var/lib/dpkg/status" and status["layer_index"] == 0
    assert status["layer_digest"].startswith("sha256:") and "ADD" in status["layer_created_by"]
    record = match["record"]
    assert (record["source"], record["namespace"]) == ("debian-tracker", "debian:12")
    assert record["feed_url"].endswith("debian.json") and record["feed_synced_at"]
    rule = match["version_rule"]
    assert rule["searched_by"] == "source-package:openssl" and rule["comparator"] == "dpkg"
    assert rule["constraint"] == "< 3.0.11-1~deb12u2" and rule["installed_version"] == "3.0.11-1~deb12u1"
    assert match["fix"]["state"] == "fixed" and "3.0.11-1~deb12u2" in match["fix"]["reason"]
    assert match["kev"]["listed"] is False and match["epss"]["score"] is None
    (effect,) = match["triage"]
    assert effect["effect"] == "suppresses" and effect["statement"]["index"] == 0


def test_explain_table_for_an_alias_with_the_policy_rows(home: Path, image: str) -> None:
    result = run_cli(home, "explain", image, "--id", "CVE-2021-23337", "--policy", "default")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "GHSA-35jh-r3h4-6jhm (aliases CVE-2021-23337) in lodash 4.17.20 [reported]" in text
    assert "found in   /app/node_modules/lodash/package.json, layer 1" in text
    assert "record     GHSA-35jh-r3h4-6jhm in npm from osv" in text and "modified 2024-02-20" in text
    assert "matches `< 4.17.21` (npm comparator)" in text
    assert "vulnerabilities/package GHSA-35jh-r3h4-6jhm+lodash: stop (counts)" in text
    assert "mapping    default" in text and "fix_available=true" in text
    missing = run_cli(home, "explain", image, "--id", "CVE-1999-0001")
    assert missing.returncode == 0 and "no package of this image matches CVE-1999-0001" in missing.stdout


def test_explain_an_sbom_names_the_layer_from_the_documents_history(home: Path) -> None:
    syft = FIXTURES_DIR / "sbom" / "tiny.syft.json"
    result = run_cli(home, "explain", f"sbom:{syft}", "--id", "GHSA-35jh-r3h4-6jhm")
    assert result.returncode == 0, result.stderr
    assert "found in   /app/node_modules/lodash/package.json, layer 1 sha256:479fce8d" in result.stdout
    assert "(COPY app / # buildkit) by javascript-package-cataloger" in result.stdout


def test_explain_names_the_allowlist_item_that_applied(home: Path, image: str, tmp_path: Path) -> None:
    from portwarden.core.policy.default import default_bundle

    document = default_bundle().document()
    document["whitelists"][0]["items"] = [
        {"id": "lodash-accepted", "gate": "vulnerabilities", "trigger_id": "GHSA-35jh-r3h4-6jhm+lodash"}
    ]
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(document))
    result = run_cli(
        home, "explain", image, "--id", "GHSA-35jh-r3h4-6jhm", "--policy", str(bundle), "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["policy_rows"]
    assert row["counted"] is False and row["row"]["allowlisted"] is True
    assert row["allowlist_item"] == {
        "id": "lodash-accepted",
        "gate": "vulnerabilities",
        "trigger_id": "GHSA-35jh-r3h4-6jhm+lodash",
        "expires_on": None,
    }
    assert row["mapping"]["id"] == "default-mapping" and row["rule"]["gate"] == "vulnerabilities"
    assert {"name": "fix_available", "value": "true"} in row["rule"]["params"]
