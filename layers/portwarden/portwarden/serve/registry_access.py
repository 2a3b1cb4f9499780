"""Registry access for one account: the credentials it added through ``/registries``.

A registry entry is ``host[:port]``, optionally followed by a repository prefix (Anchore allows
``docker.io/library/*``); credentials are picked by the image's registry host, which must match
exactly (``host:443`` is not ``host``). ``registry_verify: false`` marks the host insecure, as
Docker's insecure-registry setting does: plain HTTP is allowed for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from portwarden.adapters.http.registry import HttpRegistryClient
from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.accounts import RegistryRecord
from portwarden.core.ports import CredentialSource, RegistryClient, RegistryStore
from portwarden.core.services.acquire import ImageAccess


def registry_host(entry: str) -> str:
    return normalize_registry_host(entry.split("/", 1)[0])


class AccountCredentials:
    """A ``CredentialSource`` over one account's registry entries (read on every lookup: an entry
    added or changed through the API applies to the next pull), then ``fallback`` if given."""

    def __init__(self, registries: RegistryStore, fallback: CredentialSource | None = None) -> None:
        self._registries = registries
        self._fallback = fallback

    def lookup(self, registry: str) -> RegistryCredential | None:
        host = normalize_registry_host(registry)
        for entry in self._registries.list_registries():
            if registry_host(entry.registry) == host and entry.registry_user:
                return RegistryCredential(username=entry.registry_user, password=entry.registry_pass)
        return self._fallback.lookup(registry) if self._fallback is not None else None


def insecure_hosts(entries: list[RegistryRecord]) -> list[str]:
    return sorted({registry_host(entry.registry) for entry in entries if not entry.registry_verify})


def registry_client(
    registries: RegistryStore, fallback: CredentialSource | None = None, insecure: Sequence[str] = ()
) -> HttpRegistryClient:
    hosts = sorted({*insecure_hosts(registries.list_registries()), *insecure})
    return HttpRegistryClient(AccountCredentials(registries, fallback), insecure_registries=hosts)


def image_access(
    registries: RegistryStore,
    work_dir: Path | None = None,
    *,
    fallback: CredentialSource | None = None,
    insecure: Sequence[str] = (),
) -> ImageAccess:
    """Pulls with the account's registry entries; ``fallback`` (the admin account's: what
    ``portwarden registry add`` and Docker's config hold on this machine) after them."""
    client = registry_client(registries, fallback, insecure)

    def factory(_ref: ImageReference) -> RegistryClient:
        return client

    return ImageAccess(registry_client=factory, work_dir=work_dir)


class _OneCredential:
    def __init__(self, credential: RegistryCredential | None) -> None:
        self._credential = credential

    def lookup(self, registry: str) -> RegistryCredential | None:
        return self._credential


def probe_registry(record: RegistryRecord) -> None:
    """Log in to the registry of ``record`` with its own credentials (before they are saved)."""
    credential = (
        RegistryCredential(username=record.registry_user, password=record.registry_pass)
        if record.registry_user
        else None
    )
    host = registry_host(record.registry)
    client = HttpRegistryClient(
        _OneCredential(credential),
        insecure_registries=[host] if not record.registry_verify else [],
        connect_timeout=5.0,
        read_timeout=10.0,
    )
    try:
        client.check_login(host)
    finally:
        client.close()
