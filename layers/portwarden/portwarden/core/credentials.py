"""The credential vocabulary shared by every registry adapter: a registry's credential and its host key.

Where credentials come from (Portwarden's store, Docker's config, ECR tokens) is adapter business;
what a credential *is*, and how hosts are spelled when credentials are stored and looked up, is
defined once here so the HTTP client and every credential source agree without importing each
other. The ``CredentialSource`` protocol lives with the other ports in ``portwarden.core.ports``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# ``reference.DOCKER_HUB``, spelled here: importing the reference module loads pydantic, which a
# credential lookup (the registry rescan's memo, ``cli.registry_memo``) does not need.
DOCKER_HUB = "docker.io"
# Names under which Docker Hub shows up in config files and challenges; references use ``docker.io``.
_DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


def normalize_registry_host(text: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://Reg.example:5000/`` → ``reg.example:5000``.

    Credential stores key entries by whatever the user typed (a URL, a host, a host with a path);
    lookups use the registry part of an ImageReference, so both sides go through this function.
    """
    raw = text.strip()
    host = (urlsplit(raw).netloc if "://" in raw else raw.split("/", 1)[0]).lower()
    if host in _DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return host


@dataclass(frozen=True)
class RegistryCredential:
    """A username and secret for one registry. ``repr``/``str`` never show the secret.

    ``identity_token`` is an OAuth2 refresh token (Docker's ``identitytoken``, a credential helper
    answering with user ``<token>``): it is exchanged at the token endpoint instead of a password.
    """

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)

    def basic_header(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __str__(self) -> str:
        return f"credential for user {self.username!r}"
