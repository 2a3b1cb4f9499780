"""Evaluation as Anchore does it: mappings, allowlists, image lists, final action precedence, result shape;
and the spec's example bundles evaluating as documented."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.policy import EvaluationInput, GateAction, PolicyBundle, PolicyEvaluation
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.policy.default import default_bundle
from portwarden.core.policy.gate import Trigger, TriggerFiring
from portwarden.core.policy.params import NoParams
from portwarden.core.services.evaluate import (
    evaluate,
    evaluation_input,
    evaluation_record,
    load_bundle_bytes,
    validate_bundle,
)
from tests.unit.policy.policy_factories import NOW, analysis, data, image, match, one_rule_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "policy"
OTHER_DIGEST = "sha256:" + "d" * 64
BANNED_ID = "sha256:" + "e" * 64


def fixture_bundle(name: str) -> PolicyBundle:
    return load_bundle_bytes((FIXTURES / name).read_bytes())


EXAMPLE = fixture_bundle("allowlist_mappings_example.json")

ALLOWLIST_MATCHES = (
    match("CVE-2019-14697", "musl", type_="apk"),  # exact item
    match("CVE-2020-1234", "openssl"),  # CVE-2020-1234+*
    match("CVE-2015-1000", "libc6"),  # regexp item
    match("CVE-2022-0001", "zlib"),  # item expired
    match("CVE-2022-0002", "zlib"),  # item not yet expired
    match("CVE-2022-0003", "zlib"),  # item for another gate
)


def evaluate_example(repo_tag: str | None, matches: tuple[Any, ...] = (), **fields: Any) -> PolicyEvaluation:
    return evaluate(EXAMPLE, data(repo_tag=repo_tag, matches=matches, **fields))


def test_allowlist_items_exact_wildcard_regexp_expiry_and_gate() -> None:
    result = evaluate_example("registry.example.com/prod/app:1.0", ALLOWLIST_MATCHES)
    assert result.matched_mapping_rule is not None and result.matched_mapping_rule.id == "prod"
    allowlisted = {row.trigger_id: (row.allowlisted, row.allowlist_item_id) for row in result.results}
    assert allowlisted == {
        "CVE-2019-14697+musl": (True, "musl"),
        "CVE-2020-1234+openssl": (True, "all-of-1234"),
        "CVE-2015-1000+libc6": (True, "old-glibc"),
        "CVE-2022-0001+zlib": (False, None),
        "CVE-2022-0002+zlib": (True, "later"),
        "CVE-2022-0003+zlib": (False, None),
    }
    assert all(row.allowlist_id == "accepted" for row in result.results if row.allowlisted)
    assert result.final_action is GateAction.STOP
    assert (result.status.value, result.final_action_reason.value) == ("fail", "policy_evaluation")


def test_allowlisted_rows_stay_in_the_results_but_do_not_count() -> None:
    result = evaluate_example("registry.example.com/prod/app:1.0", ALLOWLIST_MATCHES[:3])
    assert len(result.results) == 3
    assert all(row.allowlisted and row.gate_action is GateAction.STOP for row in result.results)
    assert result.final_action is GateAction.GO
    assert result.status.value == "pass"


def test_whitelisted_image_goes_even_with_stop_rows() -> None:
    result = evaluate_example("registry.example.com/prod/base:1.0", (match("CVE-2023-9", "openssl"),))
    assert result.policy_final_action is GateAction.STOP
    assert result.final_action is GateAction.GO
    assert result.final_action_reason.value == "whitelisted"
    assert result.matched_whitelisted_images_rule is not None
    assert result.matched_whitelisted_images_rule.id == "trusted"
    assert [row.gate_action for row in result.results] == [GateAction.STOP]


def test_blacklisted_image_stops_even_when_whitelisted() -> None:
    result = evaluate_example("registry.example.com/prod/base:legacy")
    assert result.matched_whitelisted_images_rule is not None
    assert result.matched_blacklisted_images_rule is not None
    assert result.matched_blacklisted_images_rule.id == "legacy-tags"
    assert (result.final_action, result.final_action_reason.value) == (GateAction.STOP, "blacklisted")
    assert result.policy_final_action is GateAction.GO


def test_blacklisted_by_image_id() -> None:
    result = evaluate_example("registry.example.com/prod/app:1.0", image_id=BANNED_ID)
    assert result.final_action_reason.value == "blacklisted"
    assert (
        evaluate_example("registry.example.com/prod/app:1.0").final_action_reason.value == "policy_evaluation"
    )


def test_mappings_first_match_wins_and_digest_selector() -> None:
    by_digest = evaluate_example("registry.example.com/prod/app:1.0", image_digest=OTHER_DIGEST)
    assert by_digest.matched_mapping_rule is not None and by_digest.matched_mapping_rule.id == "by-digest"
    assert [row.gate for row in by_digest.results] == ["always"]
    assert by_digest.final_action is GateAction.STOP
    # the same digest without any tag still selects the digest mapping
    untagged = evaluate_example(None, image_digest=OTHER_DIGEST)
    assert untagged.matched_mapping_rule is not None and untagged.matched_mapping_rule.id == "by-digest"


def test_tag_regexp_mapping() -> None:
    matches = (match("CVE-H", "h", severity=Severity.HIGH), match("CVE-L", "l", severity=Severity.LOW))
    result = evaluate_example("quay.io/team/service:dev-42", matches)
    assert result.matched_mapping_rule is not None and result.matched_mapping_rule.id == "dev-tags"
    assert [(r.trigger_id, r.gate_action) for r in result.results] == [("CVE-H+h", GateAction.WARN)]
    assert result.final_action is GateAction.WARN
    assert result.status.value == "pass"


def test_a_mapping_evaluates_all_its_policies_in_order() -> None:
    result = evaluate_example("nginx:1.25", (match("CVE-H", "h", severity=Severity.HIGH),))
    assert result.matched_mapping_rule is not None and result.matched_mapping_rule.id == "hub-nginx"
    assert result.policy_ids == ("strict", "lenient")
    assert [(row.policy_id, row.gate_action) for row in result.results] == [
        ("strict", GateAction.STOP),
        ("lenient", GateAction.WARN),
    ]
    assert result.final_action is GateAction.STOP
    assert evaluate_example("nginx:2.0").matched_mapping_rule is None


def test_no_mapping_fails_closed_by_default_and_can_follow_anchore() -> None:
    closed = evaluate_example("quay.io/other/thing:latest")
    assert closed.matched_mapping_rule is None
    assert closed.final_action is GateAction.STOP and closed.status.value == "fail"
    assert "no mapping of bundle 'example-bundle' selects image quay.io/other/thing:latest" in (
        closed.evaluation_problems[0].message
    )
    anchore_like = evaluate(
        EXAMPLE, data(repo_tag="quay.io/other/thing:latest"), no_mapping_action=GateAction.GO
    )
    assert (anchore_like.final_action, anchore_like.status.value) == (GateAction.GO, "pass")


def test_result_row_shape_and_report_section() -> None:
    result = evaluate(
        default_bundle(), data(repo_tag="docker.io/library/app:1.0", matches=(match("CVE-1", "zlib"),))
    )
    report = result.report()
    assert set(report) >= {"bundle_id", "final_action", "status", "reason", "results"}
    assert (report["bundle_id"], report["final_action"], report["status"], report["reason"]) == (
        "portwarden-default",
        "stop",
        "fail",
        "policy_evaluation",
    )
    row = next(r for r in report["results"] if r["gate"] == "vulnerabilities")
    assert set(row) >= {
        "image_id",
        "repo_tag",
        "trigger_id",
        "gate",
        "trigger",
        "check_output",
        "gate_action",
        "allowlisted",
        "policy_id",
    }
    assert row["image_id"] == "sha256:" + "b" * 64
    assert row["repo_tag"] == "docker.io/library/app:1.0"
    assert (row["trigger_id"], row["gate_action"], row["allowlisted"]) == ("CVE-1+zlib", "stop", False)
    record = evaluation_record(result)
    assert (record.final_action, record.status, record.bundle_id) == ("stop", "fail", "portwarden-default")
    assert record.document["results"][0]["policy_id"] == "portwarden-default-policy"


def test_md5_trigger_ids_follow_gate_trigger_and_message() -> None:
    import hashlib

    result = evaluate(load_bundle_bytes(one_rule_bundle("always", "always")), data())
    expected = hashlib.md5(b"alwaysalwaysalways", usedforsecurity=False).hexdigest()
    assert [row.trigger_id for row in result.results] == [expected]


def test_a_rule_failing_at_run_time_is_reported_and_counts_as_warn() -> None:
    def broken(_data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
        raise RuntimeError("boom")

    compiled = validate_bundle(load_bundle_bytes(one_rule_bundle("always", "always")))
    [rule] = compiled.rules["p1"]
    faulty = replace(rule, trigger=Trigger("always", "raises", NoParams, broken))
    result = evaluate(replace(compiled, rules={"p1": (faulty,)}), data())
    assert result.results == ()
    [problem] = result.evaluation_problems
    assert (problem.policy_id, problem.rule_id, problem.gate, problem.trigger) == (
        "p1",
        "r1",
        "always",
        "always",
    )
    assert problem.message == "RuntimeError: boom"
    assert result.final_action is GateAction.WARN


# ---- the spec's default bundle (Anchore's shape) ---------------------------------------------------------

CLEAN_DOCKERFILE = "FROM debian:12\nHEALTHCHECK CMD true\nUSER app\n"


def anchore_default(**fields: Any) -> PolicyEvaluation:
    values: dict[str, Any] = {"repo_tag": "docker.io/library/app:1.0", "dockerfile": CLEAN_DOCKERFILE}
    values.update(fields)
    return evaluate(fixture_bundle("anchore_default_bundle.json"), data(**values))


def test_anchore_default_bundle_passes_a_clean_image() -> None:
    result = anchore_default(matches=(match("CVE-L", "l", severity=Severity.LOW),))
    assert (result.final_action, result.results) == (GateAction.GO, ())


@pytest.mark.parametrize(
    ("fields", "expected_action", "expected_trigger"),
    [
        ({"matches": (match("CVE-M", "m", severity=Severity.MEDIUM),)}, GateAction.WARN, "package"),
        ({"matches": (match("CVE-H", "h", severity=Severity.HIGH),)}, GateAction.STOP, "package"),
        (
            {"matches": (match("CVE-C", "c", severity=Severity.CRITICAL, fix_state=FixState.NOT_FIXED),)},
            GateAction.STOP,
            "package",
        ),
        (
            {"dockerfile": "FROM debian:12\nEXPOSE 22\nHEALTHCHECK CMD true\n"},
            GateAction.STOP,
            "exposed_ports",
        ),
        ({"dockerfile": "FROM debian:12\n"}, GateAction.WARN, "instruction"),
        ({"db_built_at": NOW - timedelta(days=3)}, GateAction.WARN, "stale_feed_data"),
        ({"vulnerability_data_available": False}, GateAction.WARN, "vulnerability_data_unavailable"),
    ],
)
def test_anchore_default_bundle_rules(
    fields: dict[str, Any], expected_action: GateAction, expected_trigger: str
) -> None:
    result = anchore_default(**fields)
    assert result.final_action is expected_action
    assert [row.trigger for row in result.results] == [expected_trigger]


def test_portwarden_default_bundle_stops_only_on_fixable_high_and_critical() -> None:
    common: dict[str, Any] = {"repo_tag": "docker.io/library/app:1.0", "dockerfile": CLEAN_DOCKERFILE}
    unfixed = (match("CVE-C", "c", severity=Severity.CRITICAL, fix_state=FixState.NOT_FIXED),)
    result = evaluate(default_bundle(), data(matches=unfixed, **common))
    assert (result.final_action, [r.rule_id for r in result.results]) == (
        GateAction.WARN,
        ["vulnerability-high-unfixed"],
    )
    fixable = (match("CVE-C", "c", severity=Severity.CRITICAL),)
    result = evaluate(default_bundle(), data(matches=fixable, **common))
    assert (result.final_action, [r.rule_id for r in result.results]) == (
        GateAction.STOP,
        ["vulnerability-high-fixable"],
    )
    clean = evaluate(default_bundle(), data(**common))
    assert (clean.final_action, clean.status.value, clean.results) == (GateAction.GO, "pass", ())


def test_allowlist_spellings_bundle_evaluates() -> None:
    bundle = fixture_bundle("allowlist_spellings.json")
    as_root = evaluate(bundle, data(repo_tag="registry.local/app:1"))
    assert [(r.trigger, r.allowlisted) for r in as_root.results] == [("effective_user", False)]
    assert as_root.final_action is GateAction.WARN
    accepted = evaluate(bundle, data(repo_tag="registry.local/app:allowed"))
    assert [r.allowlisted for r in accepted.results] == [True]
    assert accepted.final_action is GateAction.GO
    assert evaluate(bundle, data(repo_tag="busybox:1.36")).final_action_reason.value == "whitelisted"
    assert evaluate(bundle, data(repo_tag="busybox:bad")).final_action_reason.value == "blacklisted"


def test_evaluation_input_defaults_image_identity_from_the_analysis() -> None:
    built = evaluation_input(analysis(image=image()), [match("CVE-1", "zlib")], now=NOW, repo_tag="app:1")
    assert built.image_digest == "sha256:" + "a" * 64
    assert built.image_id == "sha256:" + "b" * 64
    assert len(built.matches) == 1
