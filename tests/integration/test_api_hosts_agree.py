"""The route families answer alike on both hosts: ``portwarden serve`` (SQLite, HTTP Basic) and the
Api function behind API Gateway (DynamoDB and S3 under moto, IAM principal).

Each family is a script of requests run against both hosts seeded with the same records; every
answer's status and shape (the keys of an object, the keys of a list's items) must be the same.
Values that differ by nature (ids, timestamps) are not compared; the family tests of each host
compare those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from portwarden.adapters.aws.account_stores import DynamoAccountStore
from portwarden.adapters.aws.dynamo_models import TableBinding
from portwarden.core.model.accounts import AccountType
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.services.accounts import new_account
from tests.support.aws import ACCOUNT, REGION, MotoStack, moto_stack
from tests.support.stores import analysis_document
from tests.support.stores import empty_bundle_document as bundle
from tests.unit.api.support import REGISTRY, ServeHarness, serve_harness

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

DIGEST = "sha256:" + "cd" * 32
UNKNOWN = "sha256:" + "ef" * 32
TAG = "registry.example/app:1"


def shape(body: Any) -> Any:
    """What is compared: an object's keys, a list's length and its first item's shape."""
    if isinstance(body, dict):
        return ("object", tuple(sorted(body)))
    if isinstance(body, list):
        return ("list", len(body), shape(body[0]) if body else None)
    return ("value", type(body).__name__)


Call = Callable[[str, str, Any, dict[str, str] | None], tuple[int, Any]]


@dataclass
class Step:
    method: str
    path: str
    body: Any = None
    query: dict[str, str] | None = None
    status: int = 200


REGISTRY_ENTRY = {"registry": "registry.example:5000", "registry_user": "ci", "registry_pass": "pa55"}
SUBSCRIPTION = {"subscription_key": TAG, "subscription_type": "tag_update"}

FAMILIES: dict[str, list[Step]] = {
    "images": [
        Step("GET", "/v1/images"),
        Step("GET", f"/v1/images/{DIGEST}"),
        Step("GET", f"/v1/images/{UNKNOWN}", status=404),
        Step("GET", "/v1/images", query={"fulltag": TAG}),
        Step("GET", "/v1/summaries/imagetags"),
        Step("GET", f"/v1/images/{DIGEST}/content"),
        Step("GET", f"/v1/images/{DIGEST}/content/os"),
        Step("GET", f"/v1/images/{DIGEST}/content/files"),
        Step("GET", f"/v1/images/{DIGEST}/content/nosuch", status=404),
        Step("GET", f"/v1/images/{DIGEST}/metadata"),
        Step("GET", f"/v1/images/{DIGEST}/vuln"),
        Step("GET", f"/v1/images/{DIGEST}/sboms/spdx-json"),
        Step("GET", f"/v1/images/{DIGEST}/sboms/cyclonedx-json"),
        Step("GET", f"/v1/images/{DIGEST}/vuln/all", status=404),
        Step("GET", f"/v1/images/{UNKNOWN}/content/os", status=404),
    ],
    "policies": [
        Step("GET", "/v1/policies"),
        Step("POST", "/v1/policies", bundle("first")),
        Step("POST", "/v1/policies", bundle("second")),
        Step("POST", "/v1/policies", {"id": "broken", "version": "9"}, status=400),
        Step("GET", "/v1/policies"),
        Step("GET", "/v1/policies/second"),
        Step("PUT", "/v1/policies/second", {**bundle("second"), "active": True}),
        Step("DELETE", "/v1/policies/second", status=409),
        Step("DELETE", "/v1/policies/first"),
        Step("GET", "/v1/policies/first", status=404),
    ],
    "events": [
        Step("POST", "/v1/policies", bundle("evented")),
        Step("GET", "/v1/event_types"),
        Step("GET", "/v1/events"),
        Step("GET", "/v1/events", query={"event_type": "user.policy", "limit": "1"}),
        Step("GET", "/v1/events", query={"event_type": "system"}),
        Step("GET", "/v1/events/no-such-event", status=404),
        Step("DELETE", "/v1/events/no-such-event", status=404),
        Step("DELETE", "/v1/events", query={"level": "error"}),
    ],
    "feeds": [
        Step("GET", "/v1/system/feeds"),
        Step("PUT", "/v1/system/feeds/nosuch", query={"enabled": "false"}, status=404),
    ],
    "registries": [
        Step("GET", "/v1/registries"),
        Step("POST", "/v1/registries", REGISTRY_ENTRY, query={"validate": "false"}),
        Step("POST", "/v1/registries", REGISTRY_ENTRY, query={"validate": "false"}, status=409),
        Step("GET", "/v1/registries"),
        Step("GET", "/v1/registries/registry.example:5000"),
        Step(
            "PUT",
            "/v1/registries/registry.example:5000",
            {**REGISTRY_ENTRY, "registry_verify": False},
            query={"validate": "false"},
        ),
        Step("DELETE", "/v1/registries/registry.example:5000"),
        Step("GET", "/v1/registries/registry.example:5000", status=404),
    ],
    "subscriptions": [
        Step("GET", "/v1/subscriptions"),
        Step("POST", "/v1/subscriptions", SUBSCRIPTION),
        Step("POST", "/v1/subscriptions", SUBSCRIPTION),
        Step("GET", "/v1/subscriptions", query={"subscription_type": "tag_update"}),
        Step("GET", "/v1/subscriptions", query={"subscription_type": "vuln_update"}),
        Step("GET", "/v1/subscriptions/no-such-subscription", status=404),
    ],
}


def _seed(catalog: Any, analyses: Any) -> None:
    catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            image_id="sha256:" + "12" * 32,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=(TAG,),
            source=f"registry:{TAG}",
            distro="debian:12",
            package_count=3,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            analyzed_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        )
    )
    analyses.put_analysis(DIGEST, analysis_document(file_count=5, package_count=3))


@pytest.fixture
def local_host(tmp_path: Path) -> Iterator[Call]:
    with serve_harness(tmp_path / "home") as harness:
        _seed(harness.host.store.catalog, harness.host.store.analyses)
        yield _local_call(harness)


def _local_call(harness: ServeHarness) -> Call:
    def call(method: str, path: str, body: Any, query: dict[str, str] | None) -> tuple[int, Any]:
        url = path + (f"?{urlencode(query)}" if query else "")
        answer = harness.admin.call(method, url, body)
        return answer.status, answer.body

    return call


@pytest.fixture
def gateway_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Call]:
    with moto_stack(monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work")) as stack:
        _seed(stack.stores.catalog, stack.stores.analyses)
        yield _gateway_call(stack)


def _gateway_call(stack: MotoStack) -> Call:
    def call(method: str, path: str, body: Any, query: dict[str, str] | None) -> tuple[int, Any]:
        response = stack.api(method, path, body, query)
        return response["statusCode"], response["json"]

    return call


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_route_family_answers_alike_on_serve_and_on_api_gateway(
    family: str, local_host: Call, gateway_host: Call
) -> None:
    for step in FAMILIES[family]:
        local_status, local_body = local_host(step.method, step.path, step.body, step.query)
        gateway_status, gateway_body = gateway_host(step.method, step.path, step.body, step.query)
        where = f"{step.method} {step.path} {step.query or ''}"
        assert local_status == step.status, (where, local_body)
        assert gateway_status == step.status, (where, gateway_body)
        assert shape(gateway_body) == shape(local_body), where
        if step.status >= 400:
            assert gateway_body["httpcode"] == local_body["httpcode"] == step.status, where


# ---- deleting images, in two accounts, and the subscriptions of an added tag --------------------------

SECOND = "sha256:" + "d1" * 32
SECOND_TAG = "registry.example/app:2"
TEAM_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/team-member"


@dataclass
class TwoAccounts:
    """A host with accounts ``admin`` and ``team``: the same image digest seeded in both."""

    admin: Call
    team: Call


def _seed_accounts(admin: Any, team: Any) -> None:
    _seed(admin.catalog, admin.analyses)
    _seed(team.catalog, team.analyses)
    admin.catalog.put_image(
        ImageRecord(
            image_digest=SECOND,
            analysis_status=AnalysisStatus.ANALYSIS_FAILED,
            repo_tags=(SECOND_TAG,),
            created_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
    )


@pytest.fixture
def local_accounts(tmp_path: Path) -> Iterator[TwoAccounts]:
    with serve_harness(tmp_path / "home") as harness:
        team_client = harness.new_account("team", "dev")
        _seed_accounts(harness.host.store, harness.host.store.for_account("team"))

        def team(method: str, path: str, body: Any, query: dict[str, str] | None) -> tuple[int, Any]:
            answer = team_client.call(method, path + (f"?{urlencode(query)}" if query else ""), body)
            return answer.status, answer.body

        yield TwoAccounts(_local_call(harness), team)


@pytest.fixture
def gateway_accounts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TwoAccounts]:
    with moto_stack(monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work")) as stack:
        stack.api("GET", "/v1/account")  # the first request seeds admin
        accounts = DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))
        accounts.add_account(new_account("team", type=AccountType.USER))
        accounts.put_principal(TEAM_PRINCIPAL, "team")
        _seed_accounts(stack.stores, stack.stores.for_account("team"))

        def team(method: str, path: str, body: Any, query: dict[str, str] | None) -> tuple[int, Any]:
            response = stack.api(method, path, body, query, principal=TEAM_PRINCIPAL)
            return response["statusCode"], response["json"]

        yield TwoAccounts(_gateway_call(stack), team)


@dataclass
class AccountStep:
    step: Step
    team: bool = False
    # For a deletion's answer: the statuses (one per digest) both hosts must give.
    statuses: tuple[str, ...] | None = None


DELETIONS: list[AccountStep] = [
    AccountStep(Step("DELETE", f"/v1/images/{UNKNOWN}", status=404)),
    AccountStep(Step("DELETE", f"/v1/images/{DIGEST}"), statuses=("deleting",)),
    AccountStep(Step("GET", f"/v1/images/{DIGEST}", status=404)),
    AccountStep(Step("GET", f"/v1/images/{DIGEST}/content/os", status=404)),
    AccountStep(Step("DELETE", f"/v1/images/{DIGEST}", status=404)),
    AccountStep(Step("GET", "/v1/images", query={"fulltag": TAG})),
    # The other account's image with the same digest is untouched, analysis included
    AccountStep(Step("GET", f"/v1/images/{DIGEST}"), team=True),
    AccountStep(Step("GET", f"/v1/images/{DIGEST}/content/os"), team=True),
    AccountStep(Step("DELETE", f"/v1/images/{SECOND}", status=404), team=True),
    # Bulk: one answer per digest, in order
    AccountStep(
        Step("DELETE", "/v1/images", query={"imageDigests": f"{SECOND},{UNKNOWN}"}),
        statuses=("deleting", "not_found"),
    ),
    AccountStep(Step("GET", "/v1/images")),
    AccountStep(Step("GET", f"/v1/images/{SECOND}", status=404)),
    AccountStep(
        Step("DELETE", "/v1/images", query={"imageDigests": DIGEST}), team=True, statuses=("deleting",)
    ),
    AccountStep(Step("GET", "/v1/images"), team=True),
]


def test_deleting_images_answers_alike_and_touches_only_the_callers_account(
    local_accounts: TwoAccounts, gateway_accounts: TwoAccounts
) -> None:
    for item in DELETIONS:
        step = item.step
        answers = [
            (host.team if item.team else host.admin)(step.method, step.path, step.body, step.query)
            for host in (local_accounts, gateway_accounts)
        ]
        where = f"{'team' if item.team else 'admin'} {step.method} {step.path} {step.query or ''}"
        for status, body in answers:
            assert status == step.status, (where, body)
            if item.statuses is not None:
                bodies = body if isinstance(body, list) else [body]
                assert tuple(b["status"] for b in bodies) == item.statuses, (where, body)
        (_, local_body), (_, gateway_body) = answers
        assert shape(gateway_body) == shape(local_body), where
        if step.method == "GET" and step.path == "/v1/images":
            assert local_body == gateway_body == [], where


def test_adding_an_image_creates_the_same_tag_subscriptions_on_both_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` resolves the tag first (200), the Api function leaves that to the state machine
    (202): both create the tag's four subscriptions by one rule."""
    tag = f"{REGISTRY}/acme/app:1.0"

    def subscriptions(host: Call) -> set[tuple[str, str, bool]]:
        status, body = host("GET", "/v1/subscriptions", None, {"subscription_key": tag})
        assert status == 200, body
        return {(s["subscription_key"], s["subscription_type"], s["active"]) for s in body}

    with (
        serve_harness(tmp_path / "home") as harness,
        moto_stack(monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work")) as stack,
    ):
        harness.push("acme/app", "1.0")
        hosts = {200: _local_call(harness), 202: _gateway_call(stack)}
        for expected, host in hosts.items():
            status, body = host("POST", "/v1/images", {"tag": tag}, {"autosubscribe": "false"})
            assert status == expected, body
        first = [subscriptions(host) for host in hosts.values()]
        assert (
            first[0]
            == first[1]
            == {
                (tag, "analysis_update", True),
                (tag, "tag_update", False),
                (tag, "vuln_update", False),
                (tag, "policy_eval", False),
            }
        )
        for expected, host in hosts.items():
            status, body = host("POST", "/v1/images", {"tag": tag}, None)
            assert status == expected, body
        second = [subscriptions(host) for host in hosts.values()]
        assert (
            second[0]
            == second[1]
            == {
                (tag, "analysis_update", True),
                (tag, "tag_update", True),
                (tag, "vuln_update", False),
                (tag, "policy_eval", False),
            }
        )


# ---- notification delivery: the webhook test and the delivery log -------------------------------------

NOTIFICATIONS: list[Step] = [
    Step("GET", "/v1/system/notifications/deliveries"),
    Step("POST", "/v1/system/webhooks/policy_eval/test"),
    Step("POST", "/v1/system/webhooks/tag_update/test"),
    Step("POST", "/v1/system/webhooks/nonsense/test", status=400),
    Step("GET", "/v1/system/notifications/deliveries"),
    Step("GET", "/v1/system/notifications/deliveries", query={"limit": "1"}),
    Step("GET", "/v1/system/notifications/deliveries", query={"notification_id": "no-such-notification"}),
]


def test_webhook_tests_and_the_delivery_log_answer_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both hosts with the same general webhook (and no SNS topic, which only the Api function has by
    default): the same attempts, the same log, and the same envelopes at the receivers."""
    from portwarden.core.watch.config import NotificationSettings, WebhookEndpoint, WebhookSettings
    from portwarden.serve.watch_config import channels_for
    from portwarden.serve.watching import for_host
    from tests.support.registry import free_port
    from tests.support.webhook_receiver import WebhookReceiver

    receivers = [WebhookReceiver(free_port()).start() for _ in range(2)]
    hook = "/hook/<userId>/<notification_type>"
    try:
        settings = NotificationSettings(
            webhooks=WebhookSettings(endpoints={"general": WebhookEndpoint(url=receivers[0].url + hook)})
        )
        with (
            serve_harness(tmp_path / "home") as harness,
            moto_stack(
                monkeypatch,
                PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
                PORTWARDEN_NOTIFICATIONS_TOPIC_ARN="",
                PORTWARDEN_WEBHOOKS=json.dumps({"general": {"url": receivers[1].url + hook}}),
            ) as stack,
        ):
            # As `portwarden serve` does when it starts watching.
            harness.host.notification_center = for_host(harness.host, settings, channels_for(settings))
            hosts = (_local_call(harness), _gateway_call(stack))
            for step in NOTIFICATIONS:
                (local_status, local_body), (gateway_status, gateway_body) = (
                    host(step.method, step.path, step.body, step.query) for host in hosts
                )
                where = f"{step.method} {step.path} {step.query or ''}"
                assert local_status == gateway_status == step.status, (where, local_body, gateway_body)
                assert shape(gateway_body) == shape(local_body), where
                if step.status == 200 and step.method == "POST":
                    assert [a["outcome"] for a in local_body] == [a["outcome"] for a in gateway_body]
        posted = [[post.json() for post in receiver.received] for receiver in receivers]
        assert [[post.path for post in receiver.received] for receiver in receivers] == [
            ["/hook/admin/policy_eval", "/hook/admin/tag_update"]
        ] * 2
        assert [shape(document["data"]) for document in posted[0]] == [
            shape(document["data"]) for document in posted[1]
        ]
    finally:
        for receiver in receivers:
            receiver.stop()
