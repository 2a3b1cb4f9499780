"""Private registries from Lambda: credentials from Secrets Manager, one secret per registry host.

The source is asked before ECR in the same chain the CLI uses; a host without a secret is pulled
anonymously (and not asked again); a malformed secret is a clear configuration error. End to end:
an image in a registry that requires basic auth is analyzed by the real state machine once its
credentials are in ``portwarden/registries/<host>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from portwarden.adapters.aws.registry_secrets import FirstCredential, SecretsManagerRegistryCredentials
from portwarden.adapters.aws.secrets import SecretsManagerSecrets
from portwarden.core.credentials import RegistryCredential
from portwarden.core.errors import ConfigurationError
from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import REGION, MotoStack, moto_stack
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import DEFAULT_USERS, RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


class CountingClient:
    """A Secrets Manager client that counts the reads it serves."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.reads: list[str] = []

    def get_secret_value(self, SecretId: str) -> Any:
        self.reads.append(SecretId)
        return self.client.get_secret_value(SecretId=SecretId)


@pytest.fixture
def secrets_client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def test_secrets_give_basic_and_token_credentials_and_a_missing_one_means_anonymous(
    secrets_client: Any,
) -> None:
    secrets_client.create_secret(
        Name="portwarden/registries/ghcr.io", SecretString=json.dumps({"username": "ci", "password": "pa55"})
    )
    secrets_client.create_secret(
        Name="portwarden/registries/registry.example:5000", SecretString=json.dumps({"token": "refresh-1"})
    )
    counting = CountingClient(secrets_client)
    source = SecretsManagerRegistryCredentials(SecretsManagerSecrets(counting))

    assert source.lookup("https://GHCR.io/") == RegistryCredential(username="ci", password="pa55")
    token = source.lookup("registry.example:5000")
    assert token is not None and token.identity_token == "refresh-1"
    assert source.lookup("quay.io") is None
    assert source.lookup("quay.io") is None  # asked once per container
    assert source.lookup("123456789012.dkr.ecr.us-east-1.amazonaws.com") is None  # ECR: the role's job
    assert counting.reads == [
        "portwarden/registries/ghcr.io",
        "portwarden/registries/registry.example:5000",
        "portwarden/registries/quay.io",
    ]
    # Asked first, before the ECR source; the first answer wins.
    ecr = RegistryCredential(username="AWS", password="ecr-token")

    class Ecr:
        def lookup(self, registry: str) -> RegistryCredential | None:
            return ecr

    chain = FirstCredential(source, Ecr())
    assert chain.lookup("ghcr.io") == RegistryCredential(username="ci", password="pa55")
    assert chain.lookup("quay.io") is ecr


def test_a_secret_without_usable_credentials_is_a_configuration_error(secrets_client: Any) -> None:
    secrets_client.create_secret(
        Name="portwarden/registries/ghcr.io", SecretString=json.dumps({"user": "ci"})
    )
    secrets_client.create_secret(Name="portwarden/registries/quay.io", SecretString="not json")
    source = SecretsManagerRegistryCredentials(SecretsManagerSecrets(secrets_client))

    with pytest.raises(ConfigurationError, match="username and password, or token"):
        source.lookup("ghcr.io")
    with pytest.raises(ConfigurationError, match="not JSON"):
        source.lookup("quay.io")


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = {
        "PORTWARDEN_INSECURE_REGISTRIES": basic_auth_registry.host,
        "PORTWARDEN_WORK_DIR": str(tmp_path / "work"),
    }
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def test_an_image_in_a_private_registry_is_analyzed_with_the_credentials_of_its_secret(
    stack: MotoStack, basic_auth_registry: RunningRegistry
) -> None:
    ((user, password),) = DEFAULT_USERS.items()
    image = build_image(
        [build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")])], ConfigSpec()
    )
    push_image(image, basic_auth_registry, "team/private", "1.0", creds=RegistryCredential(user, password))
    source = f"registry:{basic_auth_registry.host}/team/private@{image.digest}"

    # Without a secret the pull is anonymous and refused.
    refused = stack.api("POST", "/images", {"source": source})
    assert stack.wait(refused["json"]["execution_arn"])["status"] == "FAILED"
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"portwarden/registries/{basic_auth_registry.host}",
        SecretString=json.dumps({"username": user, "password": password}),
    )
    from portwarden.runtime import wiring

    wiring.reset()  # a new container: the earlier "no secret" answer is forgotten
    accepted = stack.api("POST", "/images", {"source": source})

    assert stack.wait(accepted["json"]["execution_arn"])["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


@pytest.fixture
def plain_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoStack]:
    # No insecure registries configured on the functions: only an account's entries may allow HTTP.
    with moto_stack(monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work")) as running:
        yield running


def test_a_registry_added_through_the_api_is_used_by_the_accounts_pulls_and_no_one_elses(
    plain_stack: MotoStack, basic_auth_registry: RunningRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import os

    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.core.model.accounts import AccountType
    from portwarden.core.services.accounts import new_account
    from tests.support.aws import ACCOUNT

    stack = plain_stack
    # Everything Portwarden logs, at its most verbose (the AWS libraries' own DEBUG output echoes
    # request bodies, as it does for any secret they carry: it is never enabled on Lambda).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="portwarden")
    ((user, password),) = DEFAULT_USERS.items()
    image = build_image(
        [build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")])], ConfigSpec()
    )
    push_image(image, basic_auth_registry, "team/private", "1.0", creds=RegistryCredential(user, password))
    source = f"registry:{basic_auth_registry.host}/team/private@{image.digest}"
    team_principal = f"arn:aws:iam::{ACCOUNT}:user/team-member"
    stack.api("GET", "/v1/account")  # the first request seeds admin
    accounts = DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))
    accounts.add_account(new_account("team", type=AccountType.USER))
    accounts.put_principal(team_principal, "team")

    # Given account team's registry entry, validated by logging in (plain HTTP: registry_verify false)
    entry = {
        "registry": basic_auth_registry.host,
        "registry_user": user,
        "registry_pass": password,
        "registry_verify": False,
    }
    wrong = stack.api("POST", "/v1/registries", {**entry, "registry_pass": "wrong"}, principal=team_principal)
    assert wrong["statusCode"] >= 400 and password not in json.dumps(wrong["json"])
    added = stack.api("POST", "/v1/registries", entry, principal=team_principal)
    assert added["statusCode"] == 200, added
    assert password not in json.dumps(added["json"])

    # When team and admin each add the image
    team_start = stack.api("POST", "/v1/images", {"source": source}, principal=team_principal)
    admin_start = stack.api("POST", "/v1/images", {"source": source})

    # Then team's analysis pulls with its entry; admin has no credentials (nor insecure HTTP) there
    assert stack.wait(team_start["json"]["execution_arn"])["status"] == "SUCCEEDED"
    assert stack.wait(admin_start["json"]["execution_arn"])["status"] == "FAILED"
    record = stack.stores.for_account("team").catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    failed = stack.stores.catalog.get_image(image.digest)
    assert failed is not None and failed.analysis_status is AnalysisStatus.ANALYSIS_FAILED
    # The password never reaches a log record or an execution's history
    assert password not in caplog.text
    for start in (team_start, admin_start):
        assert password not in json.dumps(stack.history(start["json"]["execution_arn"]), default=str)

    # An entry deleted through the API is no longer used (a warm container reads entries per image)
    assert (
        stack.api("DELETE", f"/v1/registries/{basic_auth_registry.host}", principal=team_principal)[
            "statusCode"
        ]
        == 200
    )
    again = stack.api("POST", "/v1/images", {"source": source, "force": True}, principal=team_principal)
    assert stack.wait(again["json"]["execution_arn"])["status"] == "FAILED"
