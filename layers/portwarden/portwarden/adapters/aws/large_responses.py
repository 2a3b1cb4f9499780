"""Responses too large for Lambda, answered with a redirect to a short-lived S3 copy.

Lambda returns at most 6 MB (6,291,456 bytes of the serialized proxy response) from a synchronous
invocation; a larger one fails, and API Gateway answers 502. Vulnerability reports, content listings
and SBOMs of big images can be larger. The Api host passes every response through
``LargeResponses.fit``: one that would not fit has its body written to S3 under a prefix of its own
(expired by the bucket's lifecycle) and is answered ``307 Temporary Redirect`` to a presigned GET of
that object, valid for minutes. Clients that follow redirects (curl -L, requests, anchore-cli) get
the document from S3; the presigned URL carries its own signature, and the Api's credentials never
leave the function. Every route is covered, because the host does it after the route answered.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.core.errors import StoreError

# Lambda's cap on a synchronous response, in bytes of the serialized payload.
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def presigning_s3_client(region: str | None, endpoint_url: str | None = None) -> Any:
    """An S3 client whose presigned URLs are SigV4 (S3 refuses SigV2 in newer regions).

    Built when called: ``LargeResponses`` calls its ``open_bucket`` once, under its lock, on the
    first response too large.
    """
    return LazyClient(
        "s3", region=region, endpoint_url=endpoint_url, config={"signature_version": "s3v4"}
    ).get()


def _content_type(response: Mapping[str, Any]) -> str:
    for key in ("multiValueHeaders", "headers"):
        headers = response.get(key) or {}
        for name, value in headers.items():
            if name.lower() == "content-type":
                return str(value[0] if isinstance(value, list) and value else value)
    return "application/json"


def response_size(response: Mapping[str, Any]) -> int:
    """The size of ``response`` as Lambda serializes it (compact JSON, UTF-8)."""
    return len(json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode())


class LargeResponses:
    """Moves a response body larger than ``limit`` to ``s3://bucket/prefix…`` behind a redirect.

    ``open_bucket`` answers the S3 client and the bucket; it is called on the first response too
    large, so the many that fit (``/health`` among them) never need the stores' settings or a client.
    """

    def __init__(
        self,
        open_bucket: Callable[[], tuple[Any, str]],
        prefix: str,
        *,
        limit: int = LAMBDA_RESPONSE_LIMIT,
        url_seconds: int = 300,
    ) -> None:
        self._open_bucket = open_bucket
        self._opened: tuple[Any, str] | None = None
        self._lock = threading.Lock()
        self._prefix = prefix
        self._limit = limit
        self._url_seconds = url_seconds

    def _bucket(self) -> tuple[Any, str]:
        with self._lock:
            if self._opened is None:
                self._opened = self._open_bucket()
            return self._opened

    def fit(self, response: dict[str, Any]) -> dict[str, Any]:
        """``response`` itself when Lambda can return it, else the redirect to its S3 copy."""
        if response_size(response) <= self._limit:
            return response
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
        key = f"{self._prefix}{uuid.uuid4().hex}"
        content_type = _content_type(response)
        client, bucket = self._bucket()
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
            url = client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key, "ResponseContentType": content_type},
                ExpiresIn=self._url_seconds,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(
                f"cannot hand out a response of {len(data)} bytes ({type(exc).__name__})"
            ) from exc
        document = {
            "message": f"the response ({len(data)} bytes) is larger than a Lambda response may be; "
            f"it is at the location given, for {self._url_seconds} seconds",
            "location": url,
            "bytes": len(data),
        }
        return {
            "statusCode": 307,
            "isBase64Encoded": False,
            "multiValueHeaders": {
                "Location": [url],
                "Content-Type": ["application/json"],
                "Cache-Control": ["no-store"],
            },
            "body": json.dumps(document),
        }
