"""Registry credentials for Amazon ECR from ``ecr:GetAuthorizationToken``.

ECR has no long-lived registry passwords: the AWS credentials chain (environment, profile, the
Lambda role) buys a token valid for 12 hours, which works as the password of user ``AWS``.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.errors import RegistryAuthError

# <account>.dkr.ecr.<region>.amazonaws.com (.cn in China), FIPS endpoints, and the dual-stack
# <account>.dkr-ecr.<region>.on.aws names.
_ECR_HOST_RE = re.compile(
    r"^(?P<account>[0-9]{12})\.(?:dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"|dkr-ecr(?:-fips)?\.(?P<dualstack_region>[a-z0-9-]+)\.on\.aws)$"
)


@dataclass(frozen=True)
class EcrRegistry:
    account: str
    region: str


def parse_ecr_host(host: str) -> EcrRegistry | None:
    """The account and region of an ECR registry host, or None for any other registry."""
    match = _ECR_HOST_RE.match(normalize_registry_host(host))
    if match is None:
        return None
    region = match.group("region") or match.group("dualstack_region")
    return EcrRegistry(account=match.group("account"), region=region)


def is_ecr_host(host: str) -> bool:
    return parse_ecr_host(host) is not None


@dataclass(frozen=True)
class _CachedToken:
    credential: RegistryCredential
    expires_at: float


class EcrCredentialProvider:
    """A ``CredentialSource`` for ECR hosts (None for every other host).

    ``client`` is an ECR client to use for every region (tests pass one); without it a client per
    region is created on first use and kept for the life of the process (a warm Lambda container).
    Tokens are reused until ``refresh_margin`` seconds before they expire.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        session: Any | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 300.0,
    ) -> None:
        self._client = client
        self._session = session
        # One client per region, each built once on first use.
        self._clients: dict[str, LazyClient] = {}
        self._clients_lock = threading.Lock()
        self._clock = clock
        self._margin = refresh_margin
        self._tokens: dict[str, _CachedToken] = {}
        self._lock = threading.Lock()

    def lookup(self, registry: str) -> RegistryCredential | None:
        target = parse_ecr_host(registry)
        if target is None:
            return None
        host = normalize_registry_host(registry)
        with self._lock:
            cached = self._tokens.get(host)
            if cached is not None and self._clock() < cached.expires_at - self._margin:
                return cached.credential
            fetched = self._fetch(target, host)
            self._tokens[host] = fetched
            return fetched.credential

    def _client_for(self, region: str) -> Any:
        if self._client is not None:
            return self._client
        with self._clients_lock:
            lazy = self._clients.get(region)
            if lazy is None:
                lazy = self._clients[region] = LazyClient("ecr", session=self._session, region=region)
        return lazy.get()

    def _fetch(self, target: EcrRegistry, host: str) -> _CachedToken:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            response = self._client_for(target.region).get_authorization_token(registryIds=[target.account])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise RegistryAuthError(f"ECR refused an authorization token for {host} ({code})") from exc
        except BotoCoreError as exc:
            raise RegistryAuthError(
                f"could not get an ECR authorization token for {host} ({type(exc).__name__})"
            ) from exc
        data = response.get("authorizationData") or []
        if not data or not isinstance(data[0].get("authorizationToken"), str):
            raise RegistryAuthError(f"ECR returned no authorization token for {host}")
        try:
            decoded = base64.b64decode(data[0]["authorizationToken"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RegistryAuthError(f"ECR returned a malformed authorization token for {host}") from exc
        username, sep, password = decoded.partition(":")
        if not sep or not password:
            raise RegistryAuthError(f"ECR returned a malformed authorization token for {host}")
        expires = data[0].get("expiresAt")
        # Tokens live 12 hours; without an expiry in the answer, assume one hour to stay safe.
        expires_at = expires.timestamp() if isinstance(expires, datetime) else self._clock() + 3600.0
        return _CachedToken(RegistryCredential(username=username, password=password), expires_at)
