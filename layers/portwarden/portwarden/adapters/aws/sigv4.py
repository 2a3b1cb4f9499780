"""SigV4 signatures for calls to an API Gateway stage with IAM authorization (service ``execute-api``),
made with the caller's AWS credentials chain: how the dashboard reaches a deployed stack."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from portwarden.core.errors import PortwardenError


class MissingAwsCredentialsError(PortwardenError):
    """No AWS credentials were found to sign with."""


def region_of(url: str) -> str | None:
    """``abc.execute-api.eu-west-1.amazonaws.com`` → ``eu-west-1``; None for other hosts."""
    parts = (urlsplit(url).hostname or "").split(".")
    if "execute-api" in parts:
        index = parts.index("execute-api")
        if index + 1 < len(parts):
            return parts[index + 1]
    return None


class ExecuteApiSigner:
    def __init__(self, region: str | None = None, session: Any = None) -> None:
        self._region = region
        self._session = session

    def __call__(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """The headers to add (Authorization, X-Amz-Date, X-Amz-Security-Token) for this request."""
        import boto3  # type: ignore[import-untyped]
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

        if self._session is None:
            self._session = boto3.Session()
        session = self._session
        credentials = session.get_credentials()
        if credentials is None:
            raise MissingAwsCredentialsError("no AWS credentials to sign API calls with")
        region = self._region or region_of(url) or session.region_name  # type: ignore[attr-defined]
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region or "us-east-1").add_auth(
            request
        )
        return {name: str(value) for name, value in request.headers.items() if name not in headers}
