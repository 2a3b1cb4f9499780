"""Registry credentials: Portwarden's store, Docker's config.json and helpers, ECR, precedence."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto import mock_aws

from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider, is_ecr_host, parse_ecr_host
from portwarden.adapters.http import credentials as credentials_module
from portwarden.adapters.http.credentials import (
    CredentialResolver,
    DockerConfigCredentials,
    PortwardenCredentialStore,
    build_credential_resolver,
    default_docker_config_path,
)
from portwarden.core.credentials import RegistryCredential
from portwarden.core.errors import ConfigurationError, RegistryAuthError

# ---- Portwarden's store ----------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_writes_owner_only_file_and_lists_without_secrets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = PortwardenCredentialStore(home)
    entry = store.add("ghcr.io", "octocat", "ghp-very-secret", insecure=False)
    store.add("localhost:5000", "dev", "dev-pass-9", insecure=True)

    assert entry.host == "ghcr.io"
    assert store.path == home / "registries.json"
    assert mode_of(store.path) == 0o600
    on_disk = json.loads(store.path.read_text())
    assert on_disk["ghcr.io"] == {"username": "octocat", "password": "ghp-very-secret", "insecure": False}

    listed = store.list()
    assert [(e.host, e.username, e.insecure) for e in listed] == [
        ("ghcr.io", "octocat", False),
        ("localhost:5000", "dev", True),
    ]
    rendered = json.dumps([e.model_dump() for e in listed]) + repr(listed)
    assert "ghp-very-secret" not in rendered and "dev-pass-9" not in rendered
    assert "password" not in rendered
    assert store.insecure_registries() == ["localhost:5000"]
    # Atomic replace leaves no temporary files behind.
    assert sorted(p.name for p in home.iterdir()) == ["registries.json"]


def test_store_replaces_a_loose_file_with_an_owner_only_one(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path)
    store.path.write_text('{"quay.io": {"username": "u", "password": "p"}}')
    store.path.chmod(0o644)
    store.add("ghcr.io", "octocat", "pw")
    assert mode_of(store.path) == 0o600
    assert {e.host for e in store.list()} == {"quay.io", "ghcr.io"}


def test_store_lookup_normalizes_hosts_and_delete_removes(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path)
    store.add("index.docker.io", "hubuser", "hubpass")  # an alias of docker.io
    credential = store.lookup("docker.io")
    assert credential == RegistryCredential("hubuser", "hubpass")
    assert "hubpass" not in repr(credential)
    assert store.lookup("ghcr.io") is None
    assert store.delete("registry-1.docker.io") is True
    assert store.delete("docker.io") is False
    assert store.lookup("docker.io") is None
    assert mode_of(store.path) == 0o600


def test_store_rejects_bad_input_and_never_echoes_file_content(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path)
    with pytest.raises(ConfigurationError):
        store.add("not a host!", "u", "p")
    with pytest.raises(ConfigurationError, match="username"):
        store.add("ghcr.io", "", "p")
    with pytest.raises(ConfigurationError, match="password"):
        store.add("ghcr.io", "u", "")
    store.path.write_text('{"ghcr.io": {"username": "u", "password": "leaky-pw"')  # truncated JSON
    with pytest.raises(ConfigurationError) as caught:
        store.list()
    assert "leaky-pw" not in str(caught.value)
    store.path.write_text('{"ghcr.io": {"username": "u", "password": 7}}')
    with pytest.raises(ConfigurationError, match=r"ghcr\.io"):
        store.lookup("ghcr.io")


def test_an_entry_without_credentials_only_marks_the_host_insecure(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path)
    entry = store.add("127.0.0.1:5000", insecure=True)
    assert (entry.host, entry.username, entry.insecure) == ("127.0.0.1:5000", "", True)
    assert store.lookup("127.0.0.1:5000") is None
    assert store.insecure_registries() == ["127.0.0.1:5000"]


def test_store_without_a_file_is_empty(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path / "missing")
    assert store.list() == []
    assert store.lookup("ghcr.io") is None
    assert store.delete("ghcr.io") is False


# ---- Docker config.json -----------------------------------------------------------------------------


def write_config(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_docker_auths_base64_plain_fields_and_docker_hub_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass:with:colons")},
                "registry.example.com:5000": {"username": "plain", "password": "plainpw"},
                "ghcr.io": {},
            }
        },
    )
    docker = DockerConfigCredentials(config)
    assert docker.lookup("docker.io") == RegistryCredential("hubuser", "hub:pass:with:colons")
    assert docker.lookup("registry.example.com:5000") == RegistryCredential("plain", "plainpw")
    assert docker.lookup("ghcr.io") is None  # an empty entry (a credsStore marker) has no secret
    assert docker.lookup("quay.io") is None


def test_docker_identity_token_becomes_an_identity_credential(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"myreg.azurecr.io": {"identitytoken": "refresh-abc"}}})
    credential = DockerConfigCredentials(config).lookup("myreg.azurecr.io")
    assert credential is not None
    assert credential.identity_token == "refresh-abc"
    assert "refresh-abc" not in repr(credential)


def test_docker_config_errors_are_configuration_errors(tmp_path: Path) -> None:
    bad_b64 = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": "%%%not-base64"}}})
    with pytest.raises(ConfigurationError, match=r"ghcr\.io"):
        DockerConfigCredentials(bad_b64).lookup("ghcr.io")
    no_colon = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("justuser")}}})
    with pytest.raises(ConfigurationError, match="user:password"):
        DockerConfigCredentials(no_colon).lookup("ghcr.io")
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(ConfigurationError):
        DockerConfigCredentials(tmp_path / "broken.json").lookup("ghcr.io")
    assert DockerConfigCredentials(tmp_path / "absent.json").lookup("ghcr.io") is None


HELPER_SCRIPT = """#!/bin/sh
# A docker credential helper for tests: answers for two servers, counts invocations.
read -r server
echo "$1 $server" >> "{log}"
case "$server" in
  helper.example.com)
    printf '{{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}}' "$server" ;;
  https://index.docker.io/v1/)
    printf '{{"ServerURL":"%s","Username":"<token>","Secret":"hub-identity"}}' "$server" ;;
  broken.example.com)
    echo "keychain is locked" >&2; exit 3 ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def helper_path(tmp_path: Path) -> tuple[str, Path]:
    """A directory holding docker-credential-test, to be used as the search PATH; and its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper-calls.log"
    script = bin_dir / "docker-credential-test"
    script.write_text(HELPER_SCRIPT.format(log=log))
    script.chmod(0o755)
    return str(bin_dir), log


def test_cred_helper_answers_and_is_asked_once_per_host(
    tmp_path: Path, helper_path: tuple[str, Path]
) -> None:
    search_path, log = helper_path
    config = write_config(tmp_path, {"credHelpers": {"helper.example.com": "test"}})
    docker = DockerConfigCredentials(config, search_path=search_path)
    credential = docker.lookup("helper.example.com")
    assert credential == RegistryCredential("helper-user", "helper-secret")
    assert docker.lookup("helper.example.com") == credential
    assert log.read_text().splitlines() == ["get helper.example.com"]
    # Hosts without a credHelpers entry never reach the helper.
    assert docker.lookup("other.example.com") is None
    assert len(log.read_text().splitlines()) == 1


def test_creds_store_covers_every_host_and_not_found_falls_back_to_auths(
    tmp_path: Path, helper_path: tuple[str, Path]
) -> None:
    search_path, log = helper_path
    config = write_config(
        tmp_path,
        {
            "credsStore": "test",
            "auths": {"https://index.docker.io/v1/": {}, "fallback.example.com": {"auth": b64("fb:fbpw")}},
        },
    )
    docker = DockerConfigCredentials(config, search_path=search_path)
    hub = docker.lookup("docker.io")
    assert hub is not None and hub.identity_token == "hub-identity"
    assert docker.lookup("fallback.example.com") == RegistryCredential("fb", "fbpw")
    calls = log.read_text().splitlines()
    assert calls == ["get https://index.docker.io/v1/", "get fallback.example.com"]


def test_failing_helper_is_a_clear_error_without_secrets(
    tmp_path: Path, helper_path: tuple[str, Path]
) -> None:
    search_path, _ = helper_path
    config = write_config(tmp_path, {"credHelpers": {"broken.example.com": "test"}})
    with pytest.raises(RegistryAuthError) as caught:
        DockerConfigCredentials(config, search_path=search_path).lookup("broken.example.com")
    message = str(caught.value)
    assert "docker-credential-test" in message
    assert "broken.example.com" in message
    assert "keychain is locked" in message


def test_helper_not_installed_is_skipped(tmp_path: Path) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    config = write_config(
        tmp_path,
        {"credHelpers": {"ghcr.io": "missing"}, "auths": {"ghcr.io": {"auth": b64("me:mine")}}},
    )
    docker = DockerConfigCredentials(config, search_path=str(empty_bin))
    assert docker.lookup("ghcr.io") == RegistryCredential("me", "mine")


def test_helper_names_cannot_escape_the_search_path(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"credsStore": "../../bin/sh"})
    with pytest.raises(ConfigurationError, match="invalid credential helper"):
        DockerConfigCredentials(config, search_path=str(tmp_path)).lookup("ghcr.io")


# ---- ECR -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "account", "region"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1"),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "123456789012", "us-gov-west-1"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1"),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "123456789012", "eu-west-1"),
    ],
)
def test_ecr_hosts_are_recognized(host: str, account: str, region: str) -> None:
    parsed = parse_ecr_host(host)
    assert parsed is not None and (parsed.account, parsed.region) == (account, region)


@pytest.mark.parametrize(
    "host",
    [
        "ghcr.io",
        "docker.io",
        "12345.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.amazonaws.com.evil.io",
    ],
)
def test_other_hosts_are_not_ecr(host: str) -> None:
    assert not is_ecr_host(host)


ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


class CountingClient:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def get_authorization_token(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.get_authorization_token(**kwargs)


def test_ecr_token_from_moto_is_decoded_and_cached() -> None:
    with mock_aws():
        client = CountingClient(boto3.client("ecr", region_name="eu-west-1"))
        # moto's token "expires" in 2015; a clock set before that keeps it fresh.
        clock = datetime(2014, 6, 1, tzinfo=UTC).timestamp
        provider = EcrCredentialProvider(client, clock=clock)
        credential = provider.lookup(ECR_HOST)
        assert credential is not None
        assert credential.username == "AWS"
        assert credential.password
        assert credential.password not in repr(credential)
        assert provider.lookup(ECR_HOST) == credential
        assert client.calls == [{"registryIds": ["123456789012"]}]
        assert provider.lookup("ghcr.io") is None
        assert len(client.calls) == 1


def test_ecr_token_is_fetched_again_when_expired() -> None:
    with mock_aws():
        client = CountingClient(boto3.client("ecr", region_name="eu-west-1"))
        provider = EcrCredentialProvider(client)  # real clock: moto's 2015 expiry is long past
        provider.lookup(ECR_HOST)
        provider.lookup(ECR_HOST)
        assert len(client.calls) == 2


def test_ecr_client_is_created_lazily_for_the_host_region() -> None:
    with mock_aws():
        provider = EcrCredentialProvider()
        credential = provider.lookup("210987654321.dkr.ecr.ap-southeast-2.amazonaws.com")
        assert credential is not None and credential.username == "AWS"


def test_ecr_client_error_becomes_registry_auth_error() -> None:
    client = boto3.client("ecr", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_authorization_token", service_error_code="AccessDeniedException", http_status_code=400
        )
        with pytest.raises(RegistryAuthError, match="AccessDeniedException") as caught:
            EcrCredentialProvider(client).lookup("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    assert type(caught.value.__cause__).__name__ == "ClientError"


# ---- precedence ------------------------------------------------------------------------------------


class Fixed:
    def __init__(self, credential: RegistryCredential | None) -> None:
        self.credential = credential
        self.asked = 0

    def lookup(self, registry: str) -> RegistryCredential | None:
        self.asked += 1
        return self.credential


def test_store_wins_over_docker_config_which_wins_over_ecr(tmp_path: Path) -> None:
    store = PortwardenCredentialStore(tmp_path / "home")
    store.add(ECR_HOST, "from-store", "s")
    config = write_config(tmp_path, {"auths": {ECR_HOST: {"auth": b64("from-docker:d")}}})
    ecr = Fixed(RegistryCredential("AWS", "from-ecr"))

    resolver = CredentialResolver(store, DockerConfigCredentials(config), ecr)
    found = resolver.lookup(ECR_HOST)
    assert found is not None and found.username == "from-store"
    assert ecr.asked == 0

    store.delete(ECR_HOST)
    found = resolver.lookup(ECR_HOST)
    assert found is not None and found.username == "from-docker"

    resolver = CredentialResolver(store, DockerConfigCredentials(tmp_path / "none.json"), ecr)
    found = resolver.lookup(ECR_HOST)
    assert found is not None and found.password == "from-ecr"
    assert CredentialResolver().lookup(ECR_HOST) is None


def test_build_credential_resolver_reads_the_store_and_docker_config(tmp_path: Path) -> None:
    home = tmp_path / "pw-home"
    PortwardenCredentialStore(home).add("localhost:5000", "dev", "devpw", insecure=True)
    config = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("gh:ghpw")}}})
    resolver = build_credential_resolver(home, config)
    assert resolver.lookup("localhost:5000") == RegistryCredential("dev", "devpw")
    assert resolver.lookup("ghcr.io") == RegistryCredential("gh", "ghpw")
    assert resolver.lookup(ECR_HOST) is None
    assert resolver.insecure_registries() == ["localhost:5000"]
    assert os.stat(home / "registries.json").st_mode & 0o077 == 0


def test_default_docker_config_path_follows_docker_config_variable(tmp_path: Path) -> None:
    assert default_docker_config_path({}, tmp_path) == tmp_path / ".docker" / "config.json"
    assert default_docker_config_path({"DOCKER_CONFIG": "/etc/dc"}, tmp_path) == Path("/etc/dc/config.json")


def test_the_cli_wiring_chains_the_ecr_source_after_the_local_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the CLI's registry client, with ECR answering for ECR hosts (no AWS call made here)
    from portwarden.cli.settings import LocalSettings
    from portwarden.cli.wiring import registry_client_factory

    def ecr_lookup(self: EcrCredentialProvider, registry: str) -> RegistryCredential | None:
        return RegistryCredential("AWS", "ecr-token") if is_ecr_host(registry) else None

    monkeypatch.setattr(EcrCredentialProvider, "lookup", ecr_lookup)
    settings = LocalSettings(home=tmp_path / "home", DOCKER_CONFIG=tmp_path / "docker")
    PortwardenCredentialStore(settings.home).add("ghcr.io", "gh", "ghpw")
    seen: list[CredentialResolver] = []
    real_build = credentials_module.build_credential_resolver

    def recording_build(*args: Any, **kwargs: Any) -> CredentialResolver:
        resolver = real_build(*args, **kwargs)
        seen.append(resolver)
        return resolver

    monkeypatch.setattr(credentials_module, "build_credential_resolver", recording_build)
    # When it is built
    registry_client_factory(settings)
    # Then ECR hosts get the ECR token and other hosts the stored credential
    (resolver,) = seen
    assert resolver.lookup(ECR_HOST) == RegistryCredential("AWS", "ecr-token")
    assert resolver.lookup("ghcr.io") == RegistryCredential("gh", "ghpw")
