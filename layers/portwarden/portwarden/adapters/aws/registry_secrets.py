"""Credentials for non-ECR registries from Secrets Manager: one secret per registry host.

The secret ``<prefix><host>`` (``portwarden/registries/ghcr.io`` with the default prefix) holds
JSON: ``{"username": "...", "password": "..."}``, or ``{"token": "..."}`` for a registry that takes
an identity (refresh) token. A host without a secret is pulled anonymously. ECR hosts are left to
the ECR source (the function's role). On Lambda this source takes the place the CLI's credential
store has in the same chain (``CredentialResolver``): it is asked first, ECR after it.
"""

from __future__ import annotations

import threading

from portwarden.adapters.aws.secrets import SecretNotFoundError, SecretsManagerSecrets
from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.errors import ConfigurationError
from portwarden.core.ports import CredentialSource

DEFAULT_SECRET_PREFIX = "portwarden/registries/"  # noqa: S105 - the name of secrets, not one


class SecretsManagerRegistryCredentials:
    """A ``CredentialSource`` reading ``<prefix><host>`` secrets, each at most once per container."""

    def __init__(self, secrets: SecretsManagerSecrets, prefix: str = DEFAULT_SECRET_PREFIX) -> None:
        self._secrets = secrets
        self._prefix = prefix
        self._lock = threading.Lock()
        self._missing: set[str] = set()

    def secret_id(self, registry: str) -> str:
        return f"{self._prefix}{normalize_registry_host(registry)}"

    def lookup(self, registry: str) -> RegistryCredential | None:
        from portwarden.adapters.aws.ecr_auth import is_ecr_host

        host = normalize_registry_host(registry)
        if is_ecr_host(host):
            return None
        secret_id = self.secret_id(host)
        with self._lock:
            if secret_id in self._missing:
                return None
        try:
            document = self._secrets.get_json(secret_id)
        except SecretNotFoundError:
            with self._lock:
                self._missing.add(secret_id)
            return None
        token, username, password = document.get("token"), document.get("username"), document.get("password")
        if isinstance(token, str) and token:
            return RegistryCredential(username="<token>", password="", identity_token=token)
        if isinstance(username, str) and username and isinstance(password, str) and password:
            return RegistryCredential(username=username, password=password)
        raise ConfigurationError(f"the secret {secret_id} needs username and password, or token")


class FirstCredential:
    """Sources asked in order; the first credential found wins."""

    def __init__(self, *sources: CredentialSource) -> None:
        self._sources = sources

    def lookup(self, registry: str) -> RegistryCredential | None:
        for source in self._sources:
            credential = source.lookup(registry)
            if credential is not None:
                return credential
        return None
