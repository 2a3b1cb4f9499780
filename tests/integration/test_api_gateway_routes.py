"""The v1 routes through the Api function as API Gateway calls it (IAM principal in the proxy event),
under moto: the caller's principal maps to an account through the accounts table.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.aws.account_stores import DynamoAccountStore
from portwarden.adapters.aws.dynamo_models import TableBinding
from portwarden.core.model.accounts import ADMIN_ACCOUNT, AccountType
from portwarden.core.model.records import AnalysisStatus, EvaluationRecord, ImageRecord, TagRecord
from portwarden.core.services.accounts import new_account
from tests.support.aws import ACCOUNT, ADMIN_PRINCIPAL_ARN, REGION, MotoStack, moto_stack
from tests.support.stores import analysis_document, vulnerability_match
from tests.support.stores import empty_bundle_document as bundle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

DIGEST = "sha256:" + "ab" * 32
OTHER_ADMIN_PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/build-17"
TEAM_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/team-member"
UNMAPPED_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/stranger"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoStack]:
    with moto_stack(monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work")) as running:
        yield running


def accounts(stack: MotoStack) -> DynamoAccountStore:
    import os

    return DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))


def assert_anchore_error(response: dict[str, Any], status: int) -> None:
    assert response["statusCode"] == status, response
    body = response["json"]
    assert body["httpcode"] == status and body["message"]
    assert isinstance(body["detail"], dict)


def test_the_deploying_principal_is_admin_from_the_first_request(stack: MotoStack) -> None:
    assert accounts(stack).principal_account(ADMIN_PRINCIPAL_ARN) is None
    assert stack.api("GET", "/v1")["json"] == "v1"
    assert stack.api("GET", "/v1/account")["json"]["name"] == ADMIN_ACCOUNT
    store = accounts(stack)
    assert store.principal_account(ADMIN_PRINCIPAL_ARN) == ADMIN_ACCOUNT
    admin = store.get_account(ADMIN_ACCOUNT)
    assert admin is not None and admin.type is AccountType.ADMIN


def test_images_policies_subscriptions_and_events_on_the_gateway(stack: MotoStack) -> None:
    assert stack.api("GET", "/v1/images")["json"] == []
    assert_anchore_error(stack.api("GET", f"/v1/images/{DIGEST}"), 404)
    stack.stores.catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            analysis_status=AnalysisStatus.NOT_ANALYZED,
            repo_tags=("registry.example/app:1",),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    listed = stack.api("GET", "/v1/images")["json"]
    assert [image["imageDigest"] for image in listed] == [DIGEST]
    fetched = stack.api("GET", f"/v1/images/{DIGEST}")
    assert fetched["statusCode"] == 200
    assert fetched["json"][0]["analysis_status"] == "not_analyzed"

    # Policies: add two, activate the second; exactly one is active
    for bundle_id in ("first", "second"):
        assert stack.api("POST", "/v1/policies", bundle(bundle_id))["statusCode"] == 200
    activated = stack.api("PUT", "/v1/policies/second", {**bundle("second"), "active": True})
    assert activated["statusCode"] == 200, activated
    listed_policies = stack.api("GET", "/v1/policies")["json"]
    assert {p["policyId"]: p["active"] for p in listed_policies} == {"first": False, "second": True}
    invalid = stack.api("POST", "/v1/policies", {"id": "broken", "version": "9"})
    assert_anchore_error(invalid, 400)

    # Subscriptions: stored in the accounts table under the caller's account
    assert stack.api("GET", "/v1/subscriptions")["json"] == []
    added = stack.api(
        "POST",
        "/v1/subscriptions",
        {"subscription_key": "docker.io/library/alpine:latest", "subscription_type": "tag_update"},
    )
    assert added["statusCode"] == 200, added
    listed_subscriptions = stack.api("GET", "/v1/subscriptions", query={"subscription_type": "tag_update"})
    assert [s["subscription_key"] for s in listed_subscriptions["json"]] == [
        "docker.io/library/alpine:latest"
    ]

    # Events: the policy changes above were recorded in the DynamoDB event log, with Anchore's
    # filters, pages, get and delete by id
    events = stack.api("GET", "/v1/events", query={"event_type": "user.policy", "limit": "2"})
    assert events["statusCode"] == 200, events
    page = events["json"]
    assert page["next_page"] is True and page["item_count"] == 2
    assert all(e["event"]["type"].startswith("user.policy.") for e in page["results"])
    everything = stack.api("GET", "/v1/events", query={"limit": "1000"})["json"]
    assert everything["next_page"] is False and everything["item_count"] >= 3
    event_id = page["results"][0]["generated_uuid"]
    one = stack.api("GET", f"/v1/events/{event_id}")
    assert one["statusCode"] == 200 and one["json"]["generated_uuid"] == event_id
    assert stack.api("DELETE", f"/v1/events/{event_id}")["statusCode"] == 200
    assert_anchore_error(stack.api("GET", f"/v1/events/{event_id}"), 404)
    deleted = stack.api("DELETE", "/v1/events", query={"level": "info"})
    assert deleted["statusCode"] == 200 and event_id not in deleted["json"] and len(deleted["json"]) >= 2
    assert stack.api("GET", "/v1/events")["json"]["results"] == []


def test_an_unmapped_principal_is_refused_with_anchores_error_body(stack: MotoStack) -> None:
    for path in ("/v1/images", "/v1/account", "/v1/policies", "/v1/subscriptions"):
        refused = stack.api("GET", path, principal=UNMAPPED_PRINCIPAL)
        assert_anchore_error(refused, 403)
        assert UNMAPPED_PRINCIPAL in refused["json"]["message"]
    # The public liveness route still answers anyone
    assert stack.api("GET", "/health", principal=None)["statusCode"] == 200


def test_mapped_principals_see_only_their_accounts_data(stack: MotoStack) -> None:
    stack.api("GET", "/v1/account")  # the first request seeds admin
    store = accounts(stack)
    store.add_account(new_account("team", type=AccountType.USER))
    store.put_principal(TEAM_PRINCIPAL, "team")
    store.put_principal(OTHER_ADMIN_PRINCIPAL, ADMIN_ACCOUNT)

    subscription = {"subscription_key": "registry.example/app:1", "subscription_type": "tag_update"}
    assert stack.api("POST", "/v1/subscriptions", subscription)["statusCode"] == 200
    assert stack.api("POST", "/v1/policies", bundle("admins-only"))["statusCode"] == 200

    # A second principal mapped to admin shares admin's data
    shared = stack.api("GET", "/v1/subscriptions", principal=OTHER_ADMIN_PRINCIPAL)["json"]
    assert [s["subscription_key"] for s in shared] == ["registry.example/app:1"]

    stack.stores.catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            analysis_status=AnalysisStatus.NOT_ANALYZED,
            repo_tags=("registry.example/app:1",),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )

    # The team's principal is served as account team and never sees admin's records: another
    # account's image is a 404, its lists are empty
    assert stack.api("GET", "/v1/account", principal=TEAM_PRINCIPAL)["json"]["name"] == "team"
    for path in ("/v1/subscriptions", "/v1/policies", "/v1/images", "/v1/events"):
        served = stack.api("GET", path, principal=TEAM_PRINCIPAL)
        assert served["statusCode"] == 200, (path, served)
        assert "admins-only" not in str(served["json"]) and "registry.example" not in str(served["json"])
    assert_anchore_error(stack.api("GET", f"/v1/images/{DIGEST}", principal=TEAM_PRINCIPAL), 404)
    assert_anchore_error(stack.api("GET", "/v1/policies/admins-only", principal=TEAM_PRINCIPAL), 404)

    # The team's own records: a bundle with admin's id, then another activated in its account only
    for bundle_id in ("admins-only", "team-2"):
        added = stack.api("POST", "/v1/policies", bundle(bundle_id), principal=TEAM_PRINCIPAL)
        assert added["statusCode"] == 200, added
    activated = stack.api(
        "PUT", "/v1/policies/team-2", {**bundle("team-2"), "active": True}, principal=TEAM_PRINCIPAL
    )
    assert activated["statusCode"] == 200, activated
    team_view = stack.api("GET", "/v1/policies", principal=TEAM_PRINCIPAL)["json"]
    assert sorted((p["policyId"], p["active"]) for p in team_view) == [
        ("admins-only", False),
        ("team-2", True),
    ]
    admin_view = stack.api("GET", "/v1/policies")["json"]
    assert [(p["policyId"], p["active"]) for p in admin_view] == [("admins-only", True)]
    team_events = stack.api("GET", "/v1/events", principal=TEAM_PRINCIPAL)["json"]["results"]
    admin_events = stack.api("GET", "/v1/events")["json"]["results"]
    assert {e["generated_uuid"] for e in team_events}.isdisjoint({e["generated_uuid"] for e in admin_events})
    assert team_events and all(e["event"]["resource"]["user_id"] == "team" for e in team_events)

    # Nor may a non-admin act for admin with x-anchore-account
    acting = stack.api(
        "GET", "/v1/subscriptions", principal=TEAM_PRINCIPAL, headers={"x-anchore-account": "admin"}
    )
    assert_anchore_error(acting, 403)

    # Removing the mapping keeps the principal out
    store.delete_principal(TEAM_PRINCIPAL)
    assert_anchore_error(stack.api("GET", "/v1/images", principal=TEAM_PRINCIPAL), 403)
    assert_anchore_error(stack.api("GET", "/v1/events", principal=TEAM_PRINCIPAL), 403)


def test_seeding_never_remaps_a_principal_an_operator_mapped(stack: MotoStack) -> None:
    from portwarden.runtime import wiring

    store = accounts(stack)
    store.add_account(new_account("team", type=AccountType.USER))
    store.put_principal(ADMIN_PRINCIPAL_ARN, "team")
    wiring.reset()  # a cold start: the first request seeds again
    assert stack.api("GET", "/v1/account")["json"]["name"] == "team"
    assert store.principal_account(ADMIN_PRINCIPAL_ARN) == "team"
    assert store.get_account(ADMIN_ACCOUNT) is not None


def test_the_templates_empty_admin_principal_maps_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from portwarden.runtime.settings import ApiSettings

    monkeypatch.setenv("PORTWARDEN_ADMIN_PRINCIPAL_ARN", "")
    monkeypatch.setenv("PORTWARDEN_ACCOUNTS_TABLE", "pw-accounts")
    settings = ApiSettings()
    assert settings.admin_principal_arn is None and settings.accounts_table == "pw-accounts"
    monkeypatch.setenv("PORTWARDEN_ADMIN_PRINCIPAL_ARN", "not-an-arn")
    with pytest.raises(ValueError, match=r"PORTWARDEN_ADMIN_PRINCIPAL_ARN"):
        ApiSettings()


def test_a_response_over_lambdas_6_mb_is_a_redirect_to_a_short_lived_s3_copy(stack: MotoStack) -> None:
    import boto3  # type: ignore[import-untyped]

    from tests.support.stores import analysis_document

    # Given an analyzed image whose file listing is larger than a Lambda response may be
    analysis = analysis_document(file_count=40_000, package_count=3)
    stack.stores.catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=("registry.example/big:1",),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    stack.stores.analyses.put_analysis(DIGEST, analysis)

    # When the files are asked for through the Api function
    redirected = stack.api("GET", f"/v1/images/{DIGEST}/content/files")

    # Then the answer is a redirect to a presigned GET of the document under responses/
    assert redirected["statusCode"] == 307, redirected["statusCode"]
    (location,) = redirected["multiValueHeaders"]["Location"]
    assert location == redirected["json"]["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    key = location.split("?", 1)[0].split(f"{stack.settings.bucket}/", 1)[-1].split(".amazonaws.com/", 1)[-1]
    assert key.startswith("responses/")
    stored = boto3.client("s3", region_name=REGION).get_object(Bucket=stack.settings.bucket, Key=key)
    assert stored["ContentType"] == "application/json"
    document = json.loads(stored["Body"].read())
    assert redirected["json"]["bytes"] > 6 * 1024 * 1024
    assert document["imageDigest"] == DIGEST and document["content_type"] == "files"
    assert len(document["content"]) == 40_000
    # A small response is answered as it is
    small = stack.api("GET", f"/v1/images/{DIGEST}/content/os")
    assert small["statusCode"] == 200 and "Location" not in small.get("multiValueHeaders", {})


# ---- deleting images and the subscriptions of an added tag -------------------------------------------


def _seed_image(stores: Any, status: AnalysisStatus, tag: str, evaluation_id: str) -> None:
    """An image with a tag, an analysis, matches and an evaluation whose document spills to S3."""
    stores.catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            analysis_status=status,
            repo_tags=(tag,),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    stores.catalog.put_tag(
        TagRecord(repo_tag=tag, image_digest=DIGEST, updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    )
    stores.analyses.put_analysis(DIGEST, analysis_document(file_count=3, package_count=2))
    stores.analyses.put_matches(DIGEST, [vulnerability_match(1)], None)
    stores.evaluations.put_evaluation(
        EvaluationRecord(
            evaluation_id=evaluation_id,
            image_digest=DIGEST,
            repo_tag=tag,
            bundle_id="b",
            final_action="stop",
            status="fail",
            evaluated_at=datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
            # Random text does not compress: the document is stored in S3, not in the item.
            document={"noise": secrets.token_hex(400_000)},
        )
    )


def _bucket_keys(stack: MotoStack) -> set[str]:
    documents = stack.stores.documents
    pages = documents.client.get_paginator("list_objects_v2").paginate(Bucket=documents.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_deleting_an_image_removes_its_records_in_the_callers_account_only(stack: MotoStack) -> None:
    stack.api("GET", "/v1/account")  # the first request seeds admin
    store = accounts(stack)
    store.add_account(new_account("team", type=AccountType.USER))
    store.put_principal(TEAM_PRINCIPAL, "team")
    admin, team = stack.stores, stack.stores.for_account("team")
    _seed_image(admin, AnalysisStatus.ANALYZED, "registry.example/app:1", "admin-eval")
    _seed_image(team, AnalysisStatus.ANALYZED, "registry.example/app:1", "team-eval")
    shared_fragment = "fragments/sha256-" + "9" * 64
    admin.blobs.put(shared_fragment, b"layer fragment")
    before = _bucket_keys(stack)
    assert any("admin-eval" in key for key in before) and any("team-eval" in key for key in before)

    assert_anchore_error(stack.api("DELETE", f"/v1/images/sha256:{'0' * 64}"), 404)
    deleted = stack.api("DELETE", f"/v1/images/{DIGEST}")
    assert deleted["statusCode"] == 200, deleted
    assert deleted["json"]["status"] == "deleting" and deleted["json"]["digest"] == DIGEST

    # Admin's image and everything hanging off it are gone
    assert_anchore_error(stack.api("GET", f"/v1/images/{DIGEST}"), 404)
    assert admin.catalog.get_image(DIGEST) is None
    assert admin.catalog.get_tag("registry.example/app:1") is None
    assert admin.analyses.get_analysis(DIGEST) is None
    assert admin.analyses.get_matches(DIGEST) is None and admin.analyses.get_match_counts(DIGEST) is None
    assert admin.evaluations.list_evaluations(DIGEST) == []
    after = _bucket_keys(stack)
    assert not any("admin-eval" in key for key in after)
    assert f"{admin.blobs.prefix}{shared_fragment}" in after  # shared data stays
    # The team's image with the same digest is untouched
    assert team.catalog.get_image(DIGEST) is not None
    assert team.catalog.get_tag("registry.example/app:1") is not None
    assert team.analyses.get_analysis(DIGEST) is not None and team.analyses.get_matches(DIGEST)
    (team_evaluation,) = team.evaluations.list_evaluations(DIGEST)
    assert len(team_evaluation.document["noise"]) == 800_000
    assert stack.api("GET", f"/v1/images/{DIGEST}", principal=TEAM_PRINCIPAL)["statusCode"] == 200
    # Deleting again is a 404; the bulk delete answers per digest
    assert_anchore_error(stack.api("DELETE", f"/v1/images/{DIGEST}"), 404)
    bulk = stack.api(
        "DELETE",
        "/v1/images",
        query={"imageDigests": f"{DIGEST},sha256:{'0' * 64}"},
        principal=TEAM_PRINCIPAL,
    )
    assert bulk["statusCode"] == 200, bulk
    assert [(d["digest"], d["status"]) for d in bulk["json"]] == [
        (DIGEST, "deleting"),
        (f"sha256:{'0' * 64}", "not_found"),
    ]
    assert team.catalog.get_image(DIGEST) is None and team.catalog.get_tag("registry.example/app:1") is None
    assert team.evaluations.list_evaluations(DIGEST) == []
    assert not any("team-eval" in key or "analyses/" in key for key in _bucket_keys(stack))


def test_an_image_being_analyzed_is_deleted_only_with_force(stack: MotoStack) -> None:
    _seed_image(stack.stores, AnalysisStatus.ANALYZING, "registry.example/app:2", "busy-eval")
    refused = stack.api("DELETE", f"/v1/images/{DIGEST}")
    assert_anchore_error(refused, 409)
    assert stack.stores.catalog.get_image(DIGEST) is not None
    assert stack.stores.analyses.get_analysis(DIGEST) is not None
    bulk = stack.api("DELETE", "/v1/images", query={"imageDigests": DIGEST})
    assert [d["status"] for d in bulk["json"]] == ["delete_failed"]
    forced = stack.api("DELETE", f"/v1/images/{DIGEST}", query={"force": "true"})
    assert forced["statusCode"] == 200, forced
    assert stack.stores.catalog.get_image(DIGEST) is None
    assert stack.stores.analyses.get_analysis(DIGEST) is None


def test_adding_an_image_creates_its_tag_subscriptions_on_the_gateway(stack: MotoStack) -> None:
    tag = "registry.example/app:3"
    kept = stack.api(
        "POST", "/v1/subscriptions", {"subscription_key": tag, "subscription_type": "vuln_update"}
    )
    assert kept["statusCode"] == 200, kept
    kept_id = kept["json"][0]["subscription_id"]
    accepted = stack.api("POST", "/v1/images", {"tag": tag}, query={"autosubscribe": "false"})
    assert accepted["statusCode"] == 202, accepted
    listed = stack.api("GET", "/v1/subscriptions", query={"subscription_key": tag})["json"]
    assert {(s["subscription_type"], s["active"]) for s in listed} == {
        ("analysis_update", True),
        ("tag_update", False),
        ("vuln_update", True),  # the one that existed is left as its owner set it
        ("policy_eval", False),
    }
    assert kept_id in {s["subscription_id"] for s in listed}
    # Added again with autosubscribe (the default): tag_update is activated, nothing duplicated
    assert stack.api("POST", "/v1/images", {"tag": tag})["statusCode"] == 202
    again = stack.api("GET", "/v1/subscriptions", query={"subscription_key": tag})["json"]
    assert len(again) == 4
    assert {s["subscription_type"] for s in again if s["active"]} == {
        "analysis_update",
        "tag_update",
        "vuln_update",
    }
    # A digest reference has no tag: no subscriptions
    untagged = stack.api("POST", "/v1/images", {"tag": f"registry.example/other@sha256:{'1' * 64}"})
    assert untagged["statusCode"] == 202, untagged
    keys = {s["subscription_key"] for s in stack.api("GET", "/v1/subscriptions")["json"]}
    assert keys == {tag}
