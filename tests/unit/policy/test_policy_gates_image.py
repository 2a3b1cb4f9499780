"""Gates over the image itself: dockerfile, files, passwd_file, metadata, retrieved_files, secret_scans.
Every trigger both fires and stays silent on crafted analyses."""

from __future__ import annotations

import pytest

from portwarden.core.model.distro import Distro
from portwarden.core.model.policy import EvaluationInput
from tests.unit.policy.policy_factories import (
    analysis,
    content_match,
    data,
    file,
    fired,
    image,
    retrieved,
    run,
    secret,
)

DOCKERFILE = """\
FROM debian:12
# a comment
RUN apt-get update && \\
    apt-get install -y curl
EXPOSE 8080 22/tcp
USER app:app
HEALTHCHECK CMD curl -f http://localhost/
"""


def with_dockerfile(
    text: str, *, actual: bool = True, config: dict[str, object] | None = None
) -> EvaluationInput:
    if actual:
        return data(analysis(image=image(config=config)), dockerfile=text)
    return data(analysis(image=image(dockerfile=text, config=config)))


# ---- dockerfile ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"instruction": "HEALTHCHECK", "check": "exists"}, 1),
        ({"instruction": "ONBUILD", "check": "exists"}, 0),
        ({"instruction": "healthcheck", "check": "not_exists"}, 0),
        ({"instruction": "ONBUILD", "check": "not_exists"}, 1),
        ({"instruction": "FROM", "check": "=", "value": "debian:12"}, 1),
        ({"instruction": "FROM", "check": "=", "value": "debian:11"}, 0),
        ({"instruction": "FROM", "check": "!=", "value": "debian:11"}, 1),
        ({"instruction": "RUN", "check": "like", "value": ".*apt-get install.*"}, 1),
        ({"instruction": "RUN", "check": "not_like", "value": ".*apt-get install.*"}, 0),
        ({"instruction": "USER", "check": "in", "value": "root, app:app"}, 1),
        ({"instruction": "USER", "check": "not_in", "value": "root,app:app"}, 0),
    ],
)
def test_instruction_checks(params: dict[str, str], count: int) -> None:
    assert len(fired("dockerfile", "instruction", params, with_dockerfile(DOCKERFILE))) == count


def test_instruction_actual_dockerfile_only_skips_guessed_dockerfiles() -> None:
    params = {"instruction": "HEALTHCHECK", "check": "exists", "actual_dockerfile_only": "true"}
    assert fired("dockerfile", "instruction", params, with_dockerfile(DOCKERFILE, actual=False)) == []
    assert len(fired("dockerfile", "instruction", params, with_dockerfile(DOCKERFILE, actual=True))) == 1
    guessed = {"instruction": "HEALTHCHECK", "check": "exists"}
    assert len(fired("dockerfile", "instruction", guessed, with_dockerfile(DOCKERFILE, actual=False))) == 1


def test_effective_user() -> None:
    as_app = with_dockerfile(DOCKERFILE)
    assert fired("dockerfile", "effective_user", {"users": "root", "type": "blacklist"}, as_app) == []
    assert len(fired("dockerfile", "effective_user", {"users": "app", "type": "blacklist"}, as_app)) == 1
    assert fired("dockerfile", "effective_user", {"users": "app,nobody", "type": "whitelist"}, as_app) == []
    as_root = with_dockerfile("FROM scratch\n")
    rows = fired("dockerfile", "effective_user", {"users": "app", "type": "whitelist"}, as_root)
    assert len(rows) == 1 and "User root" in rows[0].check_output
    # without a USER line in the reconstructed Dockerfile, the image config's user counts
    configured = with_dockerfile("FROM scratch\n", actual=False, config={"user": "1000:1000"})
    assert len(fired("dockerfile", "effective_user", {"users": "1000", "type": "blacklist"}, configured)) == 1


def test_exposed_ports() -> None:
    rows = fired(
        "dockerfile", "exposed_ports", {"ports": "22", "type": "blacklist"}, with_dockerfile(DOCKERFILE)
    )
    assert [r.check_output for r in rows] == [
        "Dockerfile exposes port (22) which is in the policy's denied list"
    ]
    allowed = fired(
        "dockerfile", "exposed_ports", {"ports": "8080", "type": "whitelist"}, with_dockerfile(DOCKERFILE)
    )
    assert len(allowed) == 1 and "(22)" in allowed[0].check_output
    quiet = fired(
        "dockerfile", "exposed_ports", {"ports": "22", "type": "blacklist"}, with_dockerfile("EXPOSE 80\n")
    )
    assert quiet == []


def test_exposed_ports_from_history_and_config() -> None:
    guessed = with_dockerfile("EXPOSE map[8443/tcp:{}]\n", actual=False, config={"exposed_ports": ["22/tcp"]})
    rows = fired("dockerfile", "exposed_ports", {"ports": "22,8443", "type": "blacklist"}, guessed)
    assert len(rows) == 2
    only_actual = {"ports": "22", "type": "blacklist", "actual_dockerfile_only": "true"}
    assert fired("dockerfile", "exposed_ports", only_actual, guessed) == []


def test_no_dockerfile_provided() -> None:
    assert (
        len(fired("dockerfile", "no_dockerfile_provided", None, with_dockerfile(DOCKERFILE, actual=False)))
        == 1
    )
    assert fired("dockerfile", "no_dockerfile_provided", None, with_dockerfile(DOCKERFILE)) == []


# ---- files -----------------------------------------------------------------------------------------------

FILES = (
    file("/etc/passwd", "0644", sha256="ab" * 32),
    file("/usr/bin/passwd", "4755", setuid=True),
    file("/root/.ssh/id_rsa", "0600"),
)


def test_files_name_match() -> None:
    image_data = data(analysis(files=FILES))
    rows = fired("files", "name_match", {"regex": ".*/id_rsa$"}, image_data)
    assert [r.check_output for r in rows] == [
        "Application of regex matched file found in container: file=/root/.ssh/id_rsa regexp=.*/id_rsa$"
    ]
    assert fired("files", "name_match", {"regex": ".*\\.pem$"}, image_data) == []


def test_files_suid_or_guid_set() -> None:
    rows = fired("files", "suid_or_guid_set", None, data(analysis(files=FILES)))
    assert len(rows) == 1 and "/usr/bin/passwd" in rows[0].check_output
    assert fired("files", "suid_or_guid_set", None, data(analysis(files=FILES[:1]))) == []


def test_files_content_regex_match_one_firing_per_file_and_pattern() -> None:
    hits = (content_match("/app/a.conf", "password", 1), content_match("/app/a.conf", "password", 9))
    image_data = data(analysis(content_matches=(*hits, content_match("/app/b.conf", "token"))))
    assert len(fired("files", "content_regex_match", None, image_data)) == 2
    assert len(fired("files", "content_regex_match", {"regex_name": "password"}, image_data)) == 1
    assert fired("files", "content_regex_match", {"regex_name": "other"}, image_data) == []


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"filename": "/etc/passwd", "checksum": "ab" * 32, "checksum_match": "equals"}, 1),
        ({"filename": "/etc/passwd", "checksum": "ab" * 32, "checksum_match": "not_equals"}, 0),
        ({"filename": "/etc/passwd", "checksum": "cd" * 32, "checksum_match": "not_equals"}, 1),
        ({"filename": "/etc/passwd", "mode": "00644", "mode_op": "equals"}, 1),
        ({"filename": "/etc/passwd", "mode": "00600"}, 0),
        ({"filename": "/etc/passwd", "mode": "0600", "mode_op": "not_equals"}, 1),
        ({"filename": "/etc/shadow", "mode": "0600"}, 0),
        ({"filename": "/etc/shadow", "mode": "0600", "skip_missing": "false"}, 1),
    ],
)
def test_files_attribute_match(params: dict[str, str], count: int) -> None:
    assert len(fired("files", "attribute_match", params, data(analysis(files=FILES)))) == count


# ---- passwd_file -----------------------------------------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
games:x:5:60:games:/usr/games:/bin/sh
"""


def passwd_data() -> EvaluationInput:
    return data(analysis(retrieved_files=(retrieved("/etc/passwd", PASSWD),)))


def test_passwd_content_not_available() -> None:
    assert len(fired("passwd_file", "content_not_available", None, data())) == 1
    assert fired("passwd_file", "content_not_available", None, passwd_data()) == []


@pytest.mark.parametrize(
    ("trigger", "params", "expected"),
    [
        ("blacklist_usernames", {"user_names": "games,ftp"}, ["games"]),
        ("blacklist_usernames", {"user_names": "ftp"}, []),
        ("blacklist_userids", {"user_ids": "0"}, ["root"]),
        ("blacklist_userids", {"user_ids": "1000"}, []),
        ("blacklist_groupids", {"group_ids": "60, 1"}, ["daemon", "games"]),
        ("blacklist_groupids", {"group_ids": "999"}, []),
        ("blacklist_shells", {"shells": "/bin/sh"}, ["games"]),
        ("blacklist_shells", {"shellmatch": "/bin/bash"}, ["root"]),
        ("blacklist_shells", {"shells": "/bin/zsh"}, []),
        ("blacklist_full_entry", {"entry": "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin"}, ["daemon"]),
        ("blacklist_full_entry", {"entry": "daemon:x:1:1:daemon:/:/bin/sh"}, []),
    ],
)
def test_passwd_blacklists(trigger: str, params: dict[str, str], expected: list[str]) -> None:
    rows = fired("passwd_file", trigger, params, passwd_data())
    assert len(rows) == len(expected)
    for row, user in zip(rows, expected, strict=True):
        assert user in row.check_output
    # without the file, nothing to check (content_not_available reports that)
    assert fired("passwd_file", trigger, params, data()) == []


# ---- metadata --------------------------------------------------------------------------------------------


def metadata_data() -> EvaluationInput:
    return data(
        analysis(
            distro=Distro(id="ubuntu", version_id="22.04", id_like=("debian",)),
            image=image(
                config={"architecture": "amd64", "os": "linux"}, layers=3, layer_size=400 * 1024 * 1024
            ),
        )
    )


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"attribute": "distro", "check": "=", "value": "ubuntu"}, 1),
        ({"attribute": "distro", "check": "=", "value": "debian"}, 0),
        ({"attribute": "distro", "check": "in", "value": "alpine, ubuntu"}, 1),
        ({"attribute": "distro", "check": "not_in", "value": "alpine, ubuntu"}, 0),
        ({"attribute": "distro_version", "check": "<", "value": "24.04"}, 1),
        ({"attribute": "distro_version", "check": ">=", "value": "22.10"}, 0),
        ({"attribute": "like_distro", "check": "like", "value": "deb.*"}, 1),
        ({"attribute": "like_distro", "check": "not_like", "value": "deb.*"}, 0),
        ({"attribute": "architecture", "check": "!=", "value": "arm64"}, 1),
        ({"attribute": "os_type", "check": "=", "value": "windows"}, 0),
        ({"attribute": "size", "check": ">", "value": "1gb"}, 1),  # 3 x 400 MiB
        ({"attribute": "size", "check": "<", "value": "1gb"}, 0),
        ({"attribute": "size", "check": "<=", "value": str(1200 * 1024 * 1024)}, 1),
        ({"attribute": "layer_count", "check": ">", "value": "2"}, 1),
        ({"attribute": "layer_count", "check": "=", "value": "2"}, 0),
        ({"attribute": "distro", "check": "exists"}, 1),
        ({"attribute": "distro", "check": "not_exists"}, 0),
    ],
)
def test_metadata_attribute(params: dict[str, str], count: int) -> None:
    assert len(fired("metadata", "attribute", params, metadata_data())) == count


def test_metadata_attribute_of_an_image_without_distro() -> None:
    bare = data(analysis(distro=None))
    assert len(fired("metadata", "attribute", {"attribute": "distro", "check": "not_exists"}, bare)) == 1
    assert (
        fired("metadata", "attribute", {"attribute": "distro", "check": "=", "value": "ubuntu"}, bare) == []
    )


def test_metadata_ordering_of_a_non_numeric_value_is_an_evaluation_problem() -> None:
    odd = data(analysis(distro=Distro(id="debian", version_id="trixie/sid")))
    result = run("metadata", "attribute", {"attribute": "distro_version", "check": ">", "value": "12"}, odd)
    assert result.results == ()
    assert "cannot compare distro_version" in result.evaluation_problems[0].message
    assert result.final_action.value == "warn"


# ---- retrieved_files -------------------------------------------------------------------------------------


def test_retrieved_files_content_not_available() -> None:
    with_file = data(analysis(retrieved_files=(retrieved("/etc/app.conf", "debug = true\n"),)))
    assert fired("retrieved_files", "content_not_available", {"path": "/etc/app.conf"}, with_file) == []
    assert len(fired("retrieved_files", "content_not_available", {"path": "/etc/other"}, with_file)) == 1


def test_retrieved_files_content_regex_and_rule_scoped_trigger_id() -> None:
    with_file = data(analysis(retrieved_files=(retrieved("/etc/app.conf", "name = x\ndebug = true\n"),)))
    params = {"path": "/etc/app.conf", "regex": "^debug = true$", "check": "match"}
    rows = fired("retrieved_files", "content_regex", params, with_file)
    assert [r.trigger_id for r in rows] == ["r1+file:///etc/app.conf"]
    assert fired("retrieved_files", "content_regex", {**params, "check": "no_match"}, with_file) == []
    absent = {"path": "/etc/app.conf", "regex": "^debug = false$", "check": "no_match"}
    assert len(fired("retrieved_files", "content_regex", absent, with_file)) == 1
    assert fired("retrieved_files", "content_regex", {**absent, "check": "match"}, with_file) == []


# ---- secret_scans ----------------------------------------------------------------------------------------


def test_secret_scans_found_and_notfound() -> None:
    secrets = data(
        analysis(
            secrets=(
                secret("/app/.aws/credentials", "AWS_ACCESS_KEY", 2),
                secret("/app/.aws/credentials", "AWS_ACCESS_KEY", 7),
                secret("/root/key.pem", "PRIV_KEY"),
            )
        )
    )
    assert len(fired("secret_scans", "content_regex_checks", None, secrets)) == 2
    by_name = fired("secret_scans", "content_regex_checks", {"content_regex_name": "PRIV_KEY"}, secrets)
    assert len(by_name) == 1 and "file=/root/key.pem" in by_name[0].check_output
    by_path = {"filename_regex": "/app/.*"}
    assert len(fired("secret_scans", "content_regex_checks", by_path, secrets)) == 1
    assert fired("secret_scans", "content_regex_checks", {"content_regex_name": "API_KEY"}, secrets) == []
    notfound = {"content_regex_name": "API_KEY", "match_type": "notfound"}
    assert len(fired("secret_scans", "content_regex_checks", notfound, secrets)) == 1
    present = {"content_regex_name": "PRIV_KEY", "match_type": "notfound"}
    assert fired("secret_scans", "content_regex_checks", present, secrets) == []
