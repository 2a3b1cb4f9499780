"""Every AWS client of the process reads botocore's service models through one loader, pynamodb's
included, while each keeps a session of its own; and clients built that way still reach moto."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from moto import mock_aws

from portwarden.adapters.aws import clients
from portwarden.adapters.aws.clients import LazyClient, new_boto3_session, new_botocore_session
from portwarden.adapters.aws.dynamo_models import TableBinding, image_model, tag_model

SERVICES = ("s3", "dynamodb", "sqs", "sns", "stepfunctions", "events", "secretsmanager", "ecr")


def loader_of(client: Any) -> Any:
    return client._loader


def test_sessions_are_new_each_time_but_share_one_loader() -> None:
    first, second = new_botocore_session(), new_botocore_session()
    assert first is not second
    assert first.get_component("data_loader") is second.get_component("data_loader")
    assert first.get_component("data_loader") is clients._shared_loader
    # The default boto3 session is not touched: its loader stays its own.
    assert boto3.session.Session()._session.get_component("data_loader") is not clients._shared_loader


def test_lazy_clients_without_a_session_use_the_shared_loader() -> None:
    s3 = LazyClient("s3", region="us-east-1").get()
    sqs = LazyClient("sqs", region="us-east-1").get()
    assert loader_of(s3) is loader_of(sqs) is clients._shared_loader
    assert s3.meta.service_model.service_name == "s3"
    assert sqs.meta.service_model.service_name == "sqs"


def test_pynamodb_connections_use_the_shared_loader_with_a_session_per_thread() -> None:
    images = image_model(TableBinding("loader-images", "us-east-1", None))
    tags = tag_model(TableBinding("loader-tags", "us-east-1", None))
    image_connection = images._get_connection().connection
    tag_connection = tags._get_connection().connection
    assert image_connection.session is not tag_connection.session
    assert image_connection.session.get_component("data_loader") is clients._shared_loader
    assert loader_of(image_connection.client) is loader_of(tag_connection.client) is clients._shared_loader

    other_thread: list[Any] = []
    thread = threading.Thread(target=lambda: other_thread.append(image_connection.session))
    thread.start()
    thread.join(timeout=30)
    assert other_thread[0] is not image_connection.session  # pynamodb's per-thread session stays
    assert other_thread[0].get_component("data_loader") is clients._shared_loader


def test_threads_building_clients_at_once_each_get_the_right_service() -> None:
    """Sixteen threads build clients of eight services from new sessions at the same moment (the
    loader then parses each model while others read it): every client is whole and of its service."""
    start = threading.Barrier(16)
    built: list[tuple[str, Any]] = []
    errors: list[BaseException] = []

    def build(service: str) -> None:
        start.wait()
        try:
            client = new_boto3_session().client(service, region_name="eu-west-1")
            operations = client.meta.service_model.operation_names
            built.append((service, (client.meta.service_model.service_name, len(operations))))
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=build, args=(SERVICES[i % len(SERVICES)],)) for i in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    assert len(built) == 16
    by_service: dict[str, set[Any]] = {}
    for service, (name, count) in built:
        by_service.setdefault(service, set()).add((name, count))
    for service, seen in by_service.items():
        assert len(seen) == 1  # both threads of a service saw the same model
        name, count = next(iter(seen))
        assert name == service
        assert count > 5


def test_a_client_built_after_moto_starts_reaches_moto_even_if_the_loader_is_older() -> None:
    LazyClient("s3", region="us-east-1").get()  # the shared loader exists before moto starts
    with mock_aws():
        s3 = LazyClient("s3", region="us-east-1").get()
        s3.create_bucket(Bucket="shared-loader-bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["shared-loader-bucket"]
