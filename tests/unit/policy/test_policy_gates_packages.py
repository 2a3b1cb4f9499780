"""Gates over packages: packages, licenses, ruby_gems, npms; and malware and always."""

from __future__ import annotations

import pytest

from portwarden.core.model.package import PackageType
from portwarden.core.model.policy import EvaluationInput
from tests.unit.policy.policy_factories import analysis, data, file, fired, package, run

OS_PACKAGES = (
    package("openssl", "3.0.11-1~deb12u2", licenses=("Apache-2.0",), owned_files=("/usr/bin/openssl",)),
    package(
        "bash", "5.2.15-2+b2", licenses=("GPL-3.0-or-later",), owned_files=("/bin/bash", "/etc/bash.bashrc")
    ),
    package("requests", "2.31.0", PackageType.PYTHON, licenses=("Apache-2.0",)),
)


def packages_data() -> EvaluationInput:
    return data(analysis(packages=OS_PACKAGES, files=(file("/usr/bin/openssl"), file("/bin/bash"))))


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"name": "curl"}, 1),
        ({"name": "openssl"}, 0),
        ({"name": "requests"}, 1),  # a language package is not a distribution package
        ({"name": "openssl", "version": "3.0.11-1~deb12u2"}, 0),
        ({"name": "openssl", "version": "3.0.11-1"}, 1),
        ({"name": "openssl", "version": "3.0.9-1", "version_match_type": "minimum"}, 0),
        ({"name": "openssl", "version": "3.0.11-1~deb12u2", "version_match_type": "minimum"}, 0),
        # dpkg ordering: ~ sorts before the empty string, so 3.0.11-1~deb12u2 < 3.0.11-1
        ({"name": "openssl", "version": "3.0.11-1", "version_match_type": "minimum"}, 1),
    ],
)
def test_required_package(params: dict[str, str], count: int) -> None:
    assert len(fired("packages", "required_package", params, packages_data())) == count


def test_packages_blacklist() -> None:
    rows = fired("packages", "blacklist", {"name": "bash"}, packages_data())
    assert [r.check_output for r in rows] == ["Package is blacklisted: bash-5.2.15-2+b2"]
    assert (
        len(fired("packages", "blacklist", {"name": "bash", "version": "5.2.15-2+b2"}, packages_data())) == 1
    )
    assert fired("packages", "blacklist", {"name": "bash", "version": "5.1"}, packages_data()) == []
    assert fired("packages", "blacklist", {"name": "requests"}, packages_data()) == []


def test_packages_verify_missing_files() -> None:
    rows = fired("packages", "verify", None, packages_data())
    assert [r.check_output for r in rows] == [
        "VERIFY check against package db for package bash: missing /etc/bash.bashrc"
    ]
    assert fired("packages", "verify", {"only_packages": "openssl"}, packages_data()) == []
    assert fired("packages", "verify", {"only_directories": "/usr,/bin"}, packages_data()) == []
    assert (
        len(fired("packages", "verify", {"only_directories": "/etc", "check": "missing"}, packages_data()))
        == 1
    )


def test_packages_verify_changed_is_reported_as_a_problem_not_swallowed() -> None:
    result = run("packages", "verify", {"check": "changed"}, packages_data())
    assert result.results == ()
    [problem] = result.evaluation_problems
    assert (problem.rule_id, problem.gate, problem.trigger) == ("r1", "packages", "verify")
    assert "digests" in problem.message
    assert result.final_action.value == "warn"


def test_licenses() -> None:
    exact = fired("licenses", "blacklist_exact_match", {"licenses": "Apache-2.0"}, packages_data())
    assert sorted(r.check_output for r in exact) == [
        "LICENSE Apache-2.0 found for package (openssl-3.0.11-1~deb12u2)",
        "LICENSE Apache-2.0 found for package (requests-2.31.0)",
    ]
    assert fired("licenses", "blacklist_exact_match", {"licenses": "GPL-3.0"}, packages_data()) == []
    partial = fired("licenses", "blacklist_partial_match", {"licenses": "GPL"}, packages_data())
    assert len(partial) == 1 and "bash" in partial[0].check_output
    assert fired("licenses", "blacklist_partial_match", {"licenses": "MIT"}, packages_data()) == []


GEMS_AND_NPMS = (
    package("rack", "2.2.3", PackageType.GEM),
    package("lodash", "4.17.20", PackageType.NPM),
)


def test_ruby_gems() -> None:
    with_gems = data(analysis(packages=GEMS_AND_NPMS))
    assert len(fired("ruby_gems", "blacklist", {"name": "rack"}, with_gems)) == 1
    assert len(fired("ruby_gems", "blacklist", {"name": "rack", "version": "2.2.3"}, with_gems)) == 1
    assert fired("ruby_gems", "blacklist", {"name": "rack", "version": "3.0"}, with_gems) == []
    assert fired("ruby_gems", "blacklist", {"name": "lodash"}, with_gems) == []
    assert len(fired("ruby_gems", "feed_data_unavailable", None, with_gems)) == 1
    assert fired("ruby_gems", "feed_data_unavailable", None, packages_data()) == []
    for trigger in ("newer_version_found_in_feed", "not_found_in_feed", "version_not_found_in_feed"):
        assert fired("ruby_gems", trigger, None, with_gems) == []


def test_npms() -> None:
    with_npms = data(analysis(packages=GEMS_AND_NPMS))
    rows = fired("npms", "blacklisted_name_version", {"name": "lodash", "version": "4.17.20"}, with_npms)
    assert [r.check_output for r in rows] == ["NPM Package is blacklisted: lodash-4.17.20"]
    assert (
        fired("npms", "blacklisted_name_version", {"name": "lodash", "version": "4.17.21"}, with_npms) == []
    )
    assert len(fired("npms", "feed_data_unavailable", None, with_npms)) == 1
    assert fired("npms", "feed_data_unavailable", None, packages_data()) == []
    for trigger in ("newer_version_in_feed", "unknown_in_feeds", "version_not_in_feeds"):
        assert fired("npms", trigger, None, with_npms) == []


def test_malware_without_a_scanner() -> None:
    assert len(fired("malware", "scan_not_run", None, data())) == 1
    assert fired("malware", "scans", None, data()) == []


def test_always() -> None:
    rows = fired("always", "always", None, data())
    assert [(r.gate, r.trigger, r.check_output) for r in rows] == [("always", "always", "always")]
