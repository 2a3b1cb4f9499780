"""Loading and validating bundles: Anchore's format and spellings, and errors that say where they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.errors import PolicyBundleError
from portwarden.core.model.policy import GateAction, PolicyBundle
from portwarden.core.policy.default import default_bundle
from portwarden.core.services.evaluate import evaluate, load_bundle_bytes, parse_bundle, validate_bundle
from tests.unit.policy.policy_factories import data, one_rule_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "policy"


def problems_of(document: dict[str, Any] | bytes) -> tuple[str, ...]:
    with pytest.raises(PolicyBundleError) as caught:
        load_bundle_bytes(document)
    return caught.value.problems


def rule_bundle(gate: str, trigger: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return one_rule_bundle(gate, trigger, params)


def test_anchore_default_bundle_loads_with_legacy_policy_id() -> None:
    bundle = load_bundle_bytes((FIXTURES / "anchore_default_bundle.json").read_bytes())
    assert bundle.mappings[0].policy_ids == ("48e6f7d6-1765-11e8-b5f9-8b6f228548b6",)
    assert [r.action for r in bundle.policies[0].rules] == [
        GateAction.STOP,
        GateAction.WARN,
        GateAction.WARN,
        GateAction.WARN,
        GateAction.WARN,
        GateAction.STOP,
    ]


def test_allowlist_spellings_are_accepted_and_stored_in_anchore_spelling() -> None:
    bundle = load_bundle_bytes((FIXTURES / "allowlist_spellings.json").read_bytes())
    document = bundle.document()
    assert [w["id"] for w in document["whitelists"]] == ["a"]
    assert document["whitelisted_images"][0]["name"] == "ok"
    assert document["blacklisted_images"][0]["name"] == "no"
    assert document["mappings"][0]["whitelist_ids"] == ["a"]
    assert "allowlists" not in document
    # and the stored document loads again unchanged
    assert load_bundle_bytes(json.dumps(document)).document() == document


def test_both_spellings_at_once_is_an_error() -> None:
    document = rule_bundle("always", "always")
    document["allowlists"] = []
    assert any("either 'whitelists' or 'allowlists'" in p for p in problems_of(document))
    document = rule_bundle("always", "always")
    document["mappings"][0]["policy_id"] = "p1"
    assert any("either 'policy_id' or 'policy_ids'" in p for p in problems_of(document))


def test_names_match_case_insensitively_and_values_may_be_json_scalars() -> None:
    document = rule_bundle("Vulnerabilities", "PACKAGE")
    document["policies"][0]["rules"][0]["params"] = [
        {"name": "Package_Type", "value": "ALL"},
        {"name": "fix_available", "value": True},
        {"name": "max_days_since_creation", "value": 30},
        {"name": "cvss_v3_base_score", "value": 7.5},
    ]
    bundle = load_bundle_bytes(document)
    compiled = validate_bundle(bundle).rules["p1"][0]
    assert (compiled.gate.name, compiled.trigger.name) == ("vulnerabilities", "package")
    params = compiled.params.model_dump()
    assert params["package_type"] == "all"
    assert params["fix_available"] is True
    assert params["max_days_since_creation"] == 30
    assert params["cvss_v3_base_score"] == 7.5


def test_unknown_gate_trigger_and_parameter_are_rejected_naming_the_rule() -> None:
    assert problems_of(rule_bundle("nosuchgate", "x")) == (
        "policy 'p1' rule 'r1': unknown gate 'nosuchgate' (known gates: vulnerabilities, dockerfile, files, "
        "passwd_file, packages, licenses, ruby_gems, npms, secret_scans, metadata, retrieved_files, malware, "
        "always)",
    )
    [unknown_trigger] = problems_of(rule_bundle("files", "nosuchtrigger"))
    assert unknown_trigger.startswith("policy 'p1' rule 'r1' gate 'files': unknown trigger 'nosuchtrigger'")
    assert "name_match" in unknown_trigger
    [unknown_param] = problems_of(rule_bundle("files", "name_match", {"regex": ".*", "colour": "red"}))
    assert unknown_param.startswith(
        "policy 'p1' rule 'r1' (gate 'files', trigger 'name_match'): "
        "unknown parameter 'colour' (accepted: regex)"
    )


def test_end_of_life_gates_are_named_as_such() -> None:
    [problem] = problems_of(rule_bundle("anchoresec", "VULNHIGH"))
    assert problem == "policy 'p1' rule 'r1': gate 'anchoresec' is end-of-life and no longer supported"


@pytest.mark.parametrize(
    ("gate", "trigger", "params", "expected"),
    [
        ("vulnerabilities", "package", {}, "parameter 'package_type' is required"),
        (
            "vulnerabilities",
            "package",
            {"package_type": "everything"},
            "parameter 'package_type': Input should be",
        ),
        (
            "vulnerabilities",
            "package",
            {"package_type": "all", "fix_available": "maybe"},
            "parameter 'fix_available'",
        ),
        (
            "vulnerabilities",
            "stale_feed_data",
            {"max_days_since_sync": "two"},
            "parameter 'max_days_since_sync'",
        ),
        (
            "vulnerabilities",
            "stale_feed_data",
            {"max_days_since_sync": "-1"},
            "parameter 'max_days_since_sync'",
        ),
        (
            "vulnerabilities",
            "package",
            {"package_type": "all", "severity_comparison": "=>"},
            "'severity_comparison'",
        ),
        ("dockerfile", "instruction", {"instruction": "FROM", "check": "="}, "parameter 'value' is required"),
        ("dockerfile", "instruction", {"instruction": "BUILD", "check": "exists"}, "parameter 'instruction'"),
        ("dockerfile", "exposed_ports", {"ports": "22,ssh", "type": "blacklist"}, "parameter 'ports'"),
        ("dockerfile", "effective_user", {"users": "", "type": "blacklist"}, "parameter 'users'"),
        ("files", "name_match", {"regex": "("}, "parameter 'regex': invalid regular expression"),
        ("files", "attribute_match", {"filename": "/x", "mode": "rwx"}, "parameter 'mode'"),
        ("metadata", "attribute", {"attribute": "size", "check": ">", "value": "big"}, "expected a size"),
        ("metadata", "attribute", {"attribute": "colour", "check": "exists"}, "parameter 'attribute'"),
        (
            "retrieved_files",
            "content_regex",
            {"path": "/etc/x", "regex": "a"},
            "parameter 'check' is required",
        ),
    ],
)
def test_parameter_problems_name_rule_gate_trigger_and_parameter(
    gate: str, trigger: str, params: dict[str, str], expected: str
) -> None:
    found = problems_of(rule_bundle(gate, trigger, params))
    assert found, "expected a validation problem"
    assert all(p.startswith(f"policy 'p1' rule 'r1' (gate '{gate}', trigger '{trigger}')") for p in found)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    document = rule_bundle("vulnerabilities", "package", {"severity": "hgh", "bogus": "1"})
    document["policies"][0]["rules"].append({"id": "r2", "gate": "nope", "trigger": "x", "action": "WARN"})
    document["mappings"][0]["policy_ids"] = ["p1", "missing"]
    document["mappings"][0]["whitelist_ids"] = ["nowhere"]
    found = problems_of(document)
    assert len(found) == 6
    joined = "\n".join(found)
    for fragment in (
        "parameter 'package_type' is required",
        "parameter 'severity'",
        "unknown parameter 'bogus'",
        "rule 'r2': unknown gate 'nope'",
        "mapping 'all': unknown policy id 'missing'",
        "mapping 'all': unknown whitelist id 'nowhere'",
    ):
        assert fragment in joined
    with pytest.raises(PolicyBundleError, match="invalid policy bundle 'test-bundle': 6 problems"):
        load_bundle_bytes(document)


def test_bundle_level_problems() -> None:
    document = rule_bundle("always", "always")
    document["version"] = "2_0"
    document["policies"].append({"id": "p1", "version": "1_0", "rules": []})
    document["whitelists"] = [
        {
            "id": "w",
            "version": "1_0",
            "items": [{"gate": "vulnerabilities", "trigger_id": "regexp:(unclosed"}],
        }
    ]
    document["mappings"].append(
        {"name": "bad", "registry": "regexp:[", "repository": "*", "image": {"type": "tag", "value": "*"}}
    )
    found = "\n".join(problems_of(document))
    assert "bundle version '2_0' is not supported (expected '1_0')" in found
    assert "duplicate policy id 'p1'" in found
    assert "whitelist 'w' item None: trigger_id: invalid regular expression" in found
    assert "mapping 'bad': names no policy" in found
    assert "mapping 'bad': registry: invalid regular expression" in found


def test_structural_errors_carry_their_location_and_rule() -> None:
    document = rule_bundle("always", "always")
    document["policies"][0]["rules"][0]["action"] = "BLOCK"
    [problem] = problems_of(document)
    assert problem.startswith(
        "policies[0].rules[0].action (policy 'p1', rule 'r1', gate 'always', trigger 'always'): "
        "Input should be"
    )
    document = rule_bundle("always", "always")
    del document["mappings"][0]["registry"]
    assert problems_of(document) == ("mappings[0].registry: Field required",)
    assert problems_of(b"{not json")[0].startswith("not valid JSON")
    assert problems_of(b"[]") == ("a policy bundle must be a JSON object",)


def test_default_bundle_ships_as_package_data() -> None:
    bundle = default_bundle()
    assert bundle.id == "portwarden-default"
    assert [m.policy_ids for m in bundle.mappings] == [("portwarden-default-policy",)]
    rules = {r.id: r for r in bundle.policies[0].rules}
    assert rules["vulnerability-high-fixable"].action is GateAction.STOP
    assert rules["vulnerability-high-fixable"].param_values() == {
        "package_type": "all",
        "severity_comparison": ">",
        "severity": "medium",
        "fix_available": "true",
    }
    assert rules["vulnerability-medium"].action is GateAction.WARN
    assert rules["dockerfile-ssh-port"].action is GateAction.STOP


def test_an_invalid_bundle_evaluates_to_stop_with_its_problems() -> None:
    bundle = parse_bundle(rule_bundle("nosuchgate", "x"))  # structurally fine, semantically not
    assert isinstance(bundle, PolicyBundle)
    result = evaluate(bundle, data())
    assert result.final_action is GateAction.STOP
    assert result.status.value == "fail"
    assert "unknown gate 'nosuchgate'" in result.evaluation_problems[0].message
