"""API Gateway's IAM callers: the principal ARN maps to an account (the Lambda host's authentication)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.api.app import create_app
from portwarden.api.dependencies import ApiDependencies
from portwarden.core.model.accounts import AccountState
from portwarden.core.model.records import ImageRecord
from portwarden.core.services.accounts import new_account
from portwarden.serve.host import LocalHost
from tests.support.stores import BASE_TIME, digest
from tests.unit.test_api_app import FakeLambdaContext, load_api_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

CI_ROLE = "arn:aws:iam::123456789012:role/ci"


class Principals:
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def principal_account(self, principal_arn: str) -> str | None:
        return self.mapping.get(principal_arn)


def iam_request(path: str, arn: str | None) -> dict[str, Any]:
    event = load_api_event("get-health.json")
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["identity"] = {"userArn": arn} if arn else {}
    return event


def test_an_iam_principal_acts_for_its_mapped_account_only(tmp_path: Path) -> None:
    host = LocalHost(tmp_path / "home")
    host.bootstrap("admin-pass-1")
    host.store.accounts.add_account(new_account("team"))
    host.store.for_account("team").catalog.put_image(
        ImageRecord(image_digest=digest(1), created_at=BASE_TIME)
    )
    host.store.catalog.put_image(ImageRecord(image_digest=digest(2), created_at=BASE_TIME))
    principals = Principals({CI_ROLE: "team"})

    def with_principals(account: str) -> ApiDependencies:
        return dataclasses.replace(
            host.for_account(account), principals=principals, for_account=with_principals
        )

    app = create_app(lambda: with_principals("admin"))

    def call(path: str, arn: str | None) -> tuple[int, Any]:
        response = app.resolve(iam_request(path, arn), FakeLambdaContext())  # type: ignore[arg-type]
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    status, images = call("/v1/images", CI_ROLE)
    assert status == 200 and [i["imageDigest"] for i in images] == [digest(1)]
    assert call(f"/v1/images/{digest(2)}", CI_ROLE)[0] == 404  # the admin's image: not found
    assert call("/v1/account", CI_ROLE)[1]["name"] == "team"
    assert call("/v1/images", "arn:aws:iam::123456789012:role/unmapped")[0] == 403
    assert call("/v1/images", None)[0] == 401
    team = host.store.accounts.get_account("team")
    assert team is not None
    host.store.accounts.put_account(team.model_copy(update={"state": AccountState.DISABLED}))
    assert call("/v1/images", CI_ROLE)[0] == 403
    host.close()
