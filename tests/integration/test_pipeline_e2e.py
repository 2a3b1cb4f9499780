"""The analysis pipeline end to end: ECR push → Step Functions → DynamoDB and S3 → the API.

Given a real local registry holding the image and the stack in moto (the real
``statemachine/analysis.asl.json`` executed by moto's interpreter, every task dispatched to our
handler modules), a published vulnerability database built by the FeedSync handler from a shared
OSV advisory, when the ECR push event from ``events/ecr`` reaches the trigger function, then the
execution succeeds, the image is ``analyzed`` in DynamoDB with its analysis in S3, and its
vulnerabilities and policy check are served by the Api handler to API Gateway proxy events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.aws.stores import AwsAnalysisStore
from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import (
    ACCOUNT,
    ECR_REGISTRY,
    MINIMIST_ADVISORY,
    REGION,
    MotoStack,
    ecr_push_event,
    load_event,
    moto_stack,
    osv_feed_zip,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

REPO_TAG = f"{ECR_REGISTRY}/team/app:1.0"


def base_layer() -> Any:
    return build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=Alpine Linux v3.20\n"),
            file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"),
            file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
        ]
    )


def app_image() -> Image:
    """Alpine's musl (no advisory in the feed) and npm minimist 1.2.5 (GHSA-xvch-5gv4-984h, critical)."""
    app = build_layer(
        [
            file(
                "app/node_modules/minimist/package.json", json.dumps({"name": "minimist", "version": "1.2.5"})
            ),
            file("app/package.json", json.dumps({"name": "app", "version": "1.0.0"})),
        ]
    )
    return build_image([base_layer(), app], ConfigSpec(cmd=("node", "/app/index.js")))


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    feed = osv_feed_zip(tmp_path / "feed", MINIMIST_ADVISORY)
    environment = registry_environment(
        anonymous_registry.host,
        PORTWARDEN_FEED_SOURCES=f"osv={feed.as_uri()}",
        PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
    )
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def publish_database(stack: MotoStack) -> dict[str, Any]:
    execution = stack.sync_feeds()
    assert execution["status"] == "SUCCEEDED", execution
    outcome: dict[str, Any] = execution["parsed_output"]["published"]
    return outcome


def test_feed_sync_publishes_a_snapshot_and_a_pointer_with_its_checksum(stack: MotoStack) -> None:
    import hashlib

    outcome = publish_database(stack)

    pointer = stack.stores.feeds.get_db_pointer()
    assert pointer is not None
    assert pointer.location == outcome["pointer"]["location"]
    assert pointer.location.startswith("vulndb/") and pointer.record_count >= 1
    snapshot = stack.stores.blobs.client.get_object(Bucket=stack.settings.bucket, Key=pointer.location)
    assert hashlib.sha256(snapshot["Body"].read()).hexdigest() == pointer.sha256
    assert outcome["published"] is True and outcome["resuming"] == []
    steps = stack.calls("FeedSyncSourceFunction")
    assert [(call.event["source"]["kind"], call.error_type) for call in steps] == [("osv", None)]

    # A second sync starts from that snapshot: same records, a new object, the pointer moved.
    second = publish_database(stack)
    moved = stack.stores.feeds.get_db_pointer()
    assert moved is not None and moved.location == second["pointer"]["location"] != pointer.location
    assert moved.record_count == pointer.record_count


def test_ecr_push_is_analyzed_matched_evaluated_and_served_by_the_api(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    publish_database(stack)

    started = stack.start_push(ecr_push_event(image.digest))
    execution = stack.wait(started["execution_arn"])

    assert started["started"] is True
    # An ECR push is account admin's
    assert json.loads(execution["input"])["account"] == "admin"
    assert execution["status"] == "SUCCEEDED", stack.history(started["execution_arn"])[-3:]
    output = json.loads(execution["output"])
    # States carry pointers, never documents.
    assert set(output) == {
        "source",
        "platform",
        "repo_tag",
        "force",
        "account",
        "attempt",
        "resolved",
        "assembled",
        "matched",
        "evaluation",
    }
    assert len(execution["output"]) < 4096
    assert output["matched"]["match_count"] == 1
    assert output["evaluation"]["final_action"] == "stop"

    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None
    assert record.analysis_status is AnalysisStatus.ANALYZED
    assert record.repo_tags == (REPO_TAG,)
    assert record.distro == "alpine:3.20.1"
    assert record.package_count == 2
    analysis_key = stack.settings.documents_prefix + AwsAnalysisStore.analysis_key(image.digest)
    assert (
        stack.stores.blobs.client.head_object(Bucket=stack.settings.bucket, Key=analysis_key)["ContentLength"]
        > 0
    )
    analysis = stack.stores.analyses.get_analysis(image.digest)
    assert analysis is not None
    assert sorted((p.name, p.version) for p in analysis.packages) == [
        ("minimist", "1.2.5"),
        ("musl", "1.2.5-r0"),
    ]
    # /etc/passwd is kept by default (passwd_file gates need it), by the Lambda phases as by the CLI.
    assert [f.path for f in analysis.retrieved_files] == ["/etc/passwd"]
    # Both layers were read by their own AnalyzeLayer invocation, in the Map.
    assert len(stack.calls("AnalyzeLayerFunction")) == 2

    image_view = stack.api("GET", f"/images/{image.digest}")
    assert image_view["statusCode"] == 200
    assert image_view["json"][0]["imageDigest"] == image.digest
    assert image_view["json"][0]["analysis_status"] == "analyzed"
    assert [detail["fulltag"] for detail in image_view["json"][0]["image_detail"]] == [REPO_TAG]

    every = stack.api("GET", f"/images/{image.digest}/vuln/all")
    assert every["statusCode"] == 200
    vulnerabilities = every["json"]["vulnerabilities"]
    assert [
        (v["vuln"], v["package_name"], v["package_version"], v["package_type"]) for v in vulnerabilities
    ] == [("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "npm")]
    assert vulnerabilities[0]["severity"] == "Critical"
    assert vulnerabilities[0]["fix"] == "1.2.6"
    assert stack.api("GET", f"/images/{image.digest}/vuln/os")["json"]["vulnerabilities"] == []
    assert len(stack.api("GET", f"/images/{image.digest}/vuln/non-os")["json"]["vulnerabilities"]) == 1

    check = stack.api("GET", f"/images/{image.digest}/check", query={"tag": REPO_TAG})
    assert check["statusCode"] == 200
    (result,) = check["json"][0][image.digest][REPO_TAG]
    assert (result["status"], result["final_action"], result["policyId"]) == (
        "fail",
        "stop",
        output["evaluation"]["bundle_id"],
    )
    assert result["detail"]["result"]["image_digest"] == image.digest

    listed = stack.api("GET", "/images")
    assert [row["imageDigest"] for row in listed["json"]] == [image.digest]


def test_api_post_starts_an_analysis_of_a_tag(stack: MotoStack, anonymous_registry: RunningRegistry) -> None:
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    publish_database(stack)
    event = load_event("api/images/post-images.json")

    response = stack.invoke("ApiFunction", event)

    assert response["statusCode"] == 202
    accepted = json.loads(response["body"])
    assert accepted["source"] == f"registry:{REPO_TAG}"
    assert accepted["repo_tag"] == REPO_TAG
    assert accepted["started"] is True
    assert stack.wait(accepted["execution_arn"])["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    # The sample GET events in events/api/images, with the digest of this image.
    responses = {}
    for name in ("get-images", "get-image", "get-image-vuln", "get-image-check"):
        event = load_event(f"api/images/{name}.json")
        placeholder = (event["pathParameters"] or {}).get("digest")
        if placeholder:
            event = json.loads(json.dumps(event).replace(placeholder, image.digest))
        response = stack.invoke("ApiFunction", event)
        assert response["statusCode"] == 200, (name, response["body"])
        responses[name] = json.loads(response["body"])
    assert [row["imageDigest"] for row in responses["get-images"]] == [image.digest]
    assert responses["get-image"][0]["analysis_status"] == "analyzed"
    assert [v["vuln"] for v in responses["get-image-vuln"]["vulnerabilities"]] == ["GHSA-xvch-5gv4-984h"]
    assert responses["get-image-check"][0][image.digest][REPO_TAG][0]["status"] == "fail"


def test_without_a_database_the_image_is_analyzed_and_the_check_warns_data_unavailable(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")

    started = stack.start_push(ecr_push_event(image.digest))
    execution = stack.wait(started["execution_arn"])

    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["matched"]["vulnerability_data_available"] is False
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert stack.api("GET", f"/images/{image.digest}/vuln/all")["statusCode"] == 404
    check = stack.api("GET", f"/images/{image.digest}/check")["json"][0][image.digest][REPO_TAG][0]
    triggers = {row["Trigger"] for row in _result_rows(check["detail"]["result"])}
    assert "vulnerability_data_unavailable" in triggers


def test_a_shared_base_layer_is_read_once(stack: MotoStack, anonymous_registry: RunningRegistry) -> None:
    first = app_image()
    second = build_image(
        [base_layer(), build_layer([file("srv/readme.txt", "other app")])], ConfigSpec(cmd=("/bin/sh",))
    )
    push_image(first, anonymous_registry, "team/app", "1.0")
    push_image(second, anonymous_registry, "team/other", "2.0")

    for image, repository, tag in ((first, "team/app", "1.0"), (second, "team/other", "2.0")):
        started = stack.start_push(ecr_push_event(image.digest, repository=repository, tag=tag))
        assert stack.wait(started["execution_arn"])["status"] == "SUCCEEDED"

    # Two layers for the first image, then only the second image's own layer: the Map passes the
    # cached base layer over without invoking AnalyzeLayer.
    read = [call.event["layer"]["digest"] for call in stack.calls("AnalyzeLayerFunction")]
    assert len(read) == 3 and len(set(read)) == 3
    second_record = stack.stores.catalog.get_image(second.digest)
    assert second_record is not None and second_record.analysis_status is AnalysisStatus.ANALYZED


def _result_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of Anchore's result table, keyed by its header (Gate, Trigger, Check_Output…)."""
    table = document["result"][document["image_id"]]["result"]
    return [dict(zip(table["header"], row, strict=True)) for row in table["rows"]]


def test_match_keeps_the_database_across_warm_invocations_until_the_pointer_moves(
    stack: MotoStack, tmp_path: Path
) -> None:
    from portwarden.runtime import wiring

    publish_database(stack)
    cache = wiring.vulnerability_db()

    first = cache.current()
    again = cache.current()
    assert first is not None and again is first  # one download per container and build
    first_file = first.matcher.db.path
    assert first_file.is_file() and str(first_file).startswith(str(tmp_path))

    publish_database(stack)
    moved = cache.current()

    pointer = stack.stores.feeds.get_db_pointer()
    assert moved is not None and pointer is not None
    assert moved is not first and moved.pointer.location == pointer.location
    assert moved.matcher.db.path.is_file()
    assert not first_file.exists()  # the previous build's copy is removed from /tmp


def test_an_accounts_analysis_through_the_api_is_its_own(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    # Given account team, mapped from its own principal, besides admin
    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.core.model.accounts import AccountType
    from portwarden.core.services.accounts import new_account

    team_principal = f"arn:aws:iam::{ACCOUNT}:user/team-member"
    stack.api("GET", "/v1/account")  # the first request seeds admin
    accounts = DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))
    accounts.add_account(new_account("team", type=AccountType.USER))
    accounts.put_principal(team_principal, "team")
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    publish_database(stack)

    # When team adds the image through the API
    accepted = stack.api("POST", "/v1/images", {"tag": REPO_TAG}, principal=team_principal)
    assert accepted["statusCode"] == 202, accepted
    execution = stack.wait(accepted["json"]["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution

    # Then every phase recorded under team: analyzed, matched, evaluated, its completion event
    team = stack.stores.for_account("team")
    record = team.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert team.analyses.get_matches(image.digest)
    assert team.evaluations.latest_evaluation(image.digest) is not None
    assert [e.type for e in team.events.list_events()] == ["user.image.analysis.completed"]
    vulns = stack.api("GET", f"/v1/images/{image.digest}/vuln/all", principal=team_principal)
    assert [v["vuln"] for v in vulns["json"]["vulnerabilities"]] == ["GHSA-xvch-5gv4-984h"]
    check = stack.api("GET", f"/v1/images/{image.digest}/check", principal=team_principal)
    assert check["statusCode"] == 200, check
    # And admin has none of it: the image is a 404, lists and the event log are empty
    assert stack.stores.catalog.get_image(image.digest) is None
    assert stack.stores.analyses.get_analysis(image.digest) is None
    assert stack.api("GET", f"/v1/images/{image.digest}")["statusCode"] == 404
    assert stack.api("GET", f"/v1/images/{image.digest}/vuln/all")["statusCode"] == 404
    assert stack.api("GET", "/v1/images")["json"] == []
    assert stack.stores.events.list_events() == []


def test_system_feeds_on_aws_list_start_the_workflow_and_honour_disabled_feeds_and_groups(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    # Before any sync: the feed, no groups, never synced
    (empty,) = stack.api("GET", "/v1/system/feeds")["json"]
    assert empty["name"] == "vulnerabilities" and empty["groups"] == [] and empty["last_full_sync"] is None

    # POST starts the FeedSync workflow and answers at once
    started = stack.api("POST", "/v1/system/feeds")
    assert started["statusCode"] == 200, started
    (result,) = started["json"]
    assert result["status"] == "started" and result["feed"] == "vulnerabilities"
    execution = stack.wait(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED" and execution["stateMachineArn"] == stack.feed_sync_arn
    (feed,) = stack.api("GET", "/v1/system/feeds")["json"]
    assert feed["enabled"] is True and feed["last_full_sync"]
    groups = {group["name"]: group for group in feed["groups"]}
    assert groups["npm"]["record_count"] >= 1 and groups["npm"]["enabled"] is True
    assert_flush = stack.api("POST", "/v1/system/feeds", query={"flush": "true"})
    assert assert_flush["statusCode"] == 400

    # A disabled group's matches are left out of the next analysis
    disabled = stack.api("PUT", "/v1/system/feeds/vulnerabilities/npm", query={"enabled": "false"})
    assert disabled["statusCode"] == 200 and disabled["json"]["enabled"] is False
    assert (
        stack.api("PUT", "/v1/system/feeds/vulnerabilities/nosuch", query={"enabled": "false"})["statusCode"]
        == 404
    )
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    analysis = stack.wait(stack.start_push(ecr_push_event(image.digest))["execution_arn"])
    assert analysis["status"] == "SUCCEEDED"
    assert stack.stores.analyses.get_matches(image.digest) == []
    enabled = stack.api("PUT", "/v1/system/feeds/vulnerabilities/npm", query={"enabled": "true"})
    assert enabled["json"]["enabled"] is True

    # A disabled feed is not synced: the API starts nothing, the scheduled run does nothing
    assert stack.api("DELETE", "/v1/system/feeds/vulnerabilities")["json"]["enabled"] is False
    runs_before = len(stack.executions(stack.feed_sync_arn))
    (skipped,) = stack.api("POST", "/v1/system/feeds")["json"]
    assert skipped["status"] == "success" and "execution_arn" not in skipped
    assert len(stack.executions(stack.feed_sync_arn)) == runs_before
    scheduled = stack.sync_feeds()
    assert scheduled["status"] == "SUCCEEDED" and scheduled["parsed_output"]["plan"]["disabled"] is True

    # Only admin drives the feeds
    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.core.model.accounts import AccountType
    from portwarden.core.services.accounts import new_account

    team_principal = f"arn:aws:iam::{ACCOUNT}:user/team-member"
    accounts = DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))
    accounts.add_account(new_account("team", type=AccountType.USER))
    accounts.put_principal(team_principal, "team")
    assert stack.api("POST", "/v1/system/feeds", principal=team_principal)["statusCode"] == 403


def test_the_pipelines_evaluation_applies_the_accounts_vex_statements(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    # The same image stops without a statement (the test above); a not_affected statement stored
    # through the API keeps the Evaluate phase from stopping it, as it keeps GET /check from doing so.
    image = app_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    publish_database(stack)
    statement = {
        "vulnerability": {"name": "GHSA-xvch-5gv4-984h"},
        "products": [{"@id": "pkg:npm/minimist@1.2.5"}],
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
    }
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/minimist",
        "author": "security@example.test",
        "timestamp": "2026-11-01T00:00:00Z",
        "version": 1,
        "statements": [statement],
    }
    stored = stack.api("POST", "/vex", document)
    assert stored["statusCode"] == 200, stored

    started = stack.start_push(ecr_push_event(image.digest))
    execution = stack.wait(started["execution_arn"])
    assert execution["status"] == "SUCCEEDED", stack.history(started["execution_arn"])[-3:]
    output = json.loads(execution["output"])
    assert output["matched"]["match_count"] == 1
    # The stop came from the critical minimist match; the default bundle's other rules only warn.
    assert output["evaluation"]["final_action"] == "warn"
    latest = stack.stores.evaluations.latest_evaluation(image.digest, REPO_TAG)
    assert latest is not None and latest.final_action == "warn"
    assert "GHSA-xvch-5gv4-984h" not in json.dumps(stack.api("GET", f"/images/{image.digest}/check")["json"])
