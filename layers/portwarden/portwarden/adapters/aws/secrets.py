"""Secrets Manager: secret strings read once per container, never logged.

A secret that changes is picked up by the next container (functions are short-lived); a rotation
that must apply at once can call :meth:`SecretsManagerSecrets.forget`.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.core.errors import ConfigurationError, StoreError

_MISSING = frozenset({"ResourceNotFoundException"})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


class SecretNotFoundError(ConfigurationError):
    """No secret of that name (a registry without credentials, or a name mistyped)."""


class SecretsManagerSecrets:
    """Reads secret strings by name or ARN. ``client`` is used as given; otherwise one is built
    lazily from ``session`` (or the default boto3 session)."""

    def __init__(
        self, client: Any | None = None, *, session: Any | None = None, endpoint_url: str | None = None
    ):
        self._client = LazyClient("secretsmanager", client, session=session, endpoint_url=endpoint_url)
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}

    @property
    def client(self) -> Any:
        return self._client.get()

    def get_string(self, secret_id: str) -> str:
        """The secret's current string value. ConfigurationError when it does not exist or may not
        be read (a deployment mistake), StoreError for anything else."""
        with self._lock:
            cached = self._values.get(secret_id)
        if cached is not None:
            return cached
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            response = self.client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING:
                raise SecretNotFoundError(f"the secret {secret_id} does not exist") from exc
            if code in _DENIED:
                raise ConfigurationError(f"this function may not read the secret {secret_id}") from exc
            raise StoreError(f"cannot read the secret {secret_id} ({code or 'ClientError'})") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot read the secret {secret_id} ({type(exc).__name__})") from exc
        value = response.get("SecretString")
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"the secret {secret_id} holds no string")
        with self._lock:
            self._values[secret_id] = value
        return value

    def get_json(self, secret_id: str) -> dict[str, Any]:
        """The secret's string parsed as a JSON object."""
        try:
            document = json.loads(self.get_string(secret_id))
        except ValueError:
            raise ConfigurationError(f"the secret {secret_id} is not JSON") from None
        if not isinstance(document, dict):
            raise ConfigurationError(f"the secret {secret_id} is not a JSON object")
        return document

    def forget(self) -> None:
        with self._lock:
            self._values.clear()


def nvd_api_key(secrets: SecretsManagerSecrets, secret_id: str) -> str:
    """The NVD API key from its secret: the plain string, or ``apiKey`` of a JSON object."""
    value = secrets.get_string(secret_id).strip()
    if value.startswith("{"):
        key = secrets.get_json(secret_id).get("apiKey")
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(f"the secret {secret_id} has no apiKey string")
        return key.strip()
    return value
