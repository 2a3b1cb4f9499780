"""The gate registry: Anchore's gate, trigger and parameter names (public contract), unique and complete."""

from __future__ import annotations

import pytest

from portwarden.core.policy.gate import Gate, Trigger
from portwarden.core.policy.gates import GATES, _index, get_gate
from portwarden.core.policy.params import NoParams

# gate -> trigger -> parameter names, as anchore-surface.md §3 spells them
CONTRACT: dict[str, dict[str, set[str]]] = {
    "vulnerabilities": {
        "package": {
            "package_type",
            "severity_comparison",
            "severity",
            "cvss_v3_base_score_comparison",
            "cvss_v3_base_score",
            "cvss_v3_exploitability_score_comparison",
            "cvss_v3_exploitability_score",
            "cvss_v3_impact_score_comparison",
            "cvss_v3_impact_score",
            "vendor_cvss_v3_base_score_comparison",
            "vendor_cvss_v3_base_score",
            "vendor_cvss_v3_exploitability_score_comparison",
            "vendor_cvss_v3_exploitability_score",
            "vendor_cvss_v3_impact_score_comparison",
            "vendor_cvss_v3_impact_score",
            "fix_available",
            "vendor_only",
            "max_days_since_creation",
            "max_days_since_fix",
            "package_path_exclude",
        },
        "stale_feed_data": {"max_days_since_sync"},
        "vulnerability_data_unavailable": set(),
        "blacklist": {"vulnerability_ids", "vendor_only"},
    },
    "dockerfile": {
        "instruction": {"instruction", "check", "value", "actual_dockerfile_only"},
        "effective_user": {"users", "type"},
        "exposed_ports": {"ports", "type", "actual_dockerfile_only"},
        "no_dockerfile_provided": set(),
    },
    "files": {
        "content_regex_match": {"regex_name"},
        "name_match": {"regex"},
        "attribute_match": {
            "filename",
            "checksum_algorithm",
            "checksum",
            "checksum_match",
            "mode",
            "mode_op",
            "skip_missing",
        },
        "suid_or_guid_set": set(),
    },
    "passwd_file": {
        "content_not_available": set(),
        "blacklist_usernames": {"user_names"},
        "blacklist_userids": {"user_ids"},
        "blacklist_groupids": {"group_ids"},
        "blacklist_shells": {"shells"},
        "blacklist_full_entry": {"entry"},
    },
    "packages": {
        "required_package": {"name", "version", "version_match_type"},
        "verify": {"only_packages", "only_directories", "check"},
        "blacklist": {"name", "version"},
    },
    "licenses": {"blacklist_exact_match": {"licenses"}, "blacklist_partial_match": {"licenses"}},
    "ruby_gems": {
        "newer_version_found_in_feed": set(),
        "not_found_in_feed": set(),
        "version_not_found_in_feed": set(),
        "feed_data_unavailable": set(),
        "blacklist": {"name", "version"},
    },
    "npms": {
        "newer_version_in_feed": set(),
        "unknown_in_feeds": set(),
        "version_not_in_feeds": set(),
        "feed_data_unavailable": set(),
        "blacklisted_name_version": {"name", "version"},
    },
    "secret_scans": {"content_regex_checks": {"content_regex_name", "filename_regex", "match_type"}},
    "metadata": {"attribute": {"attribute", "check", "value"}},
    "retrieved_files": {"content_not_available": {"path"}, "content_regex": {"path", "regex", "check"}},
    "malware": {"scans": set(), "scan_not_run": set()},
    "always": {"always": set()},
}


def test_registry_spells_gates_triggers_and_parameters_as_anchore() -> None:
    registered = {
        gate.name: {trigger.name: set(trigger.params.model_fields) for trigger in gate.triggers}
        for gate in GATES
    }
    assert registered == CONTRACT


def test_gates_have_versions_and_are_found_case_insensitively() -> None:
    assert all(gate.version >= 1 for gate in GATES)
    found = get_gate(" Vulnerabilities ")
    assert found is not None and found.name == "vulnerabilities"
    assert found.trigger("STALE_FEED_DATA") is not None
    assert get_gate("anchoresec") is None


def test_duplicate_names_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="duplicate policy gate 'always'"):
        _index((GATES[-1], GATES[-1]))
    trigger = Trigger("t", "d", NoParams, lambda _d, _p: iter(()))
    with pytest.raises(ValueError, match="duplicate trigger 't'"):
        Gate(name="g", version=1, description="d", triggers=(trigger, trigger))
