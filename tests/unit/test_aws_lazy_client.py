"""The adapters' boto3 clients are built once, however many threads ask for them at first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from portwarden.adapters.aws.clients import LazyClient
from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider
from portwarden.adapters.aws.s3 import S3BlobStore
from portwarden.adapters.aws.secrets import SecretsManagerSecrets
from portwarden.adapters.aws.sns import SnsChannel


class SlowSession:
    """A session whose client() takes a while, so threads asking at once overlap inside it."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str | None, str | None]] = []
        self.options: list[dict[str, Any]] = []

    def client(
        self, service: str, *, region_name: str | None, endpoint_url: str | None, **options: Any
    ) -> Any:
        time.sleep(0.05)
        self.built.append((service, region_name, endpoint_url))
        self.options.append(options)
        return object()


def ask_at_once(get: Callable[[], Any], threads: int = 8) -> list[Any]:
    start = threading.Barrier(threads)
    seen: list[Any] = []

    def ask() -> None:
        start.wait()
        seen.append(get())

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return seen


def test_threads_asking_at_once_share_one_client_built_once() -> None:
    session = SlowSession()
    lazy = LazyClient("sqs", session=session, region="eu-west-1", endpoint_url="http://127.0.0.1:1")
    start = threading.Barrier(8)
    seen: list[Any] = []

    def ask() -> None:
        start.wait()
        seen.append(lazy.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.built == [("sqs", "eu-west-1", "http://127.0.0.1:1")]
    assert len(seen) == 8 and len({id(client) for client in seen}) == 1


def test_a_client_given_is_used_as_it_is() -> None:
    given = object()
    assert LazyClient("s3", given).get() is given


def test_botocore_config_options_reach_the_client() -> None:
    session = SlowSession()
    LazyClient("s3", session=session, region="eu-west-1", config={"signature_version": "s3v4"}).get()
    (options,) = session.options
    assert options["config"].signature_version == "s3v4"


# The older adapters build their clients through LazyClient too: one client, built once on first use.
def s3_client(session: SlowSession) -> Callable[[], Any]:
    store = S3BlobStore("b", session=session, region="eu-west-1")
    return lambda: store.client


def sns_client(session: SlowSession) -> Callable[[], Any]:
    return SnsChannel("arn:aws:sns:eu-west-1:1:t", session=session, endpoint_url="http://h")._sns


def secrets_client(session: SlowSession) -> Callable[[], Any]:
    secrets = SecretsManagerSecrets(session=session)
    return lambda: secrets.client


def ecr_client(session: SlowSession) -> Callable[[], Any]:
    provider = EcrCredentialProvider(session=session)
    return lambda: provider._client_for("eu-west-1")


@pytest.mark.parametrize(
    ("opener", "expected"),
    [
        (s3_client, ("s3", "eu-west-1", None)),
        (sns_client, ("sns", None, "http://h")),
        (secrets_client, ("secretsmanager", None, None)),
        (ecr_client, ("ecr", "eu-west-1", None)),
    ],
)
def test_an_adapter_builds_its_client_once_for_threads_asking_at_once(
    opener: Callable[[SlowSession], Callable[[], Any]], expected: tuple[str, str | None, str | None]
) -> None:
    session = SlowSession()
    seen = ask_at_once(opener(session))
    assert session.built == [expected]
    assert len(seen) == 8 and len({id(client) for client in seen}) == 1


def test_the_ecr_provider_keeps_one_client_per_region() -> None:
    session = SlowSession()
    provider = EcrCredentialProvider(session=session)
    clients = [provider._client_for(region) for region in ("eu-west-1", "us-east-1", "eu-west-1")]
    assert clients[0] is clients[2] and clients[0] is not clients[1]
    assert session.built == [("ecr", "eu-west-1", None), ("ecr", "us-east-1", None)]
