"""The Api host's answer to responses over Lambda's 6 MB: their S3 copy behind a redirect."""

from __future__ import annotations

import base64
import json
from typing import Any

from portwarden.adapters.aws.large_responses import LargeResponses, response_size


class RecordingS3:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[f"{Bucket}/{Key}"] = (Body, ContentType)

    def generate_presigned_url(self, operation: str, *, Params: dict[str, Any], ExpiresIn: int) -> str:
        assert operation == "get_object"
        return f"https://s3.test/{Params['Bucket']}/{Params['Key']}?expires={ExpiresIn}"


def response(body: str, **extra: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": body, "isBase64Encoded": False, **extra}


def test_a_response_that_fits_is_returned_as_it_is() -> None:
    s3 = RecordingS3()
    small = response("x" * 100, multiValueHeaders={"Content-Type": ["application/json"]})
    limit = response_size(small)
    assert LargeResponses(lambda: (s3, "b"), "responses/", limit=limit).fit(small) is small
    assert s3.objects == {}


def test_answers_that_fit_never_open_the_bucket() -> None:
    # /health is served without the stores' settings: only a response too large needs S3
    def unavailable() -> tuple[object, str]:
        raise AssertionError("the bucket was opened for a response that fits")

    offload = LargeResponses(unavailable, "responses/", limit=10_000)
    for _ in range(3):
        assert offload.fit(response("ok"))["statusCode"] == 200


def test_one_byte_over_the_limit_is_moved_to_s3_behind_a_redirect() -> None:
    s3 = RecordingS3()
    big = response("y" * 2000, multiValueHeaders={"Content-Type": ["application/spdx+json"]})
    fitted = LargeResponses(
        lambda: (s3, "b"), "responses/", limit=response_size(big) - 1, url_seconds=120
    ).fit(big)
    assert fitted["statusCode"] == 307
    ((stored_key, (body, content_type)),) = s3.objects.items()
    assert stored_key.startswith("b/responses/") and body == b"y" * 2000
    assert content_type == "application/spdx+json"
    (location,) = fitted["multiValueHeaders"]["Location"]
    assert location.endswith("?expires=120") and stored_key in location
    assert json.loads(fitted["body"]) == {
        "message": json.loads(fitted["body"])["message"],
        "location": location,
        "bytes": 2000,
    }
    assert response_size(fitted) < 2000


def test_a_binary_body_is_stored_decoded() -> None:
    s3 = RecordingS3()
    raw = bytes(range(256)) * 40
    big = response(
        base64.b64encode(raw).decode(), isBase64Encoded=True, headers={"content-type": "application/gzip"}
    )
    LargeResponses(lambda: (s3, "b"), "r/", limit=1024).fit(big)
    ((body, content_type),) = s3.objects.values()
    assert body == raw and content_type == "application/gzip"


def test_every_stored_response_gets_its_own_key() -> None:
    s3 = RecordingS3()
    offload = LargeResponses(lambda: (s3, "b"), "r/", limit=1024)
    for _ in range(50):
        offload.fit(response("z" * 4096))
    assert len(s3.objects) == 50
