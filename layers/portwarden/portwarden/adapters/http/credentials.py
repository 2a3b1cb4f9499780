"""Where registry credentials come from, in order of precedence:

1. Portwarden's own store, ``registries.json`` under PORTWARDEN_HOME (``portwarden registry add``),
   owner-only (0600), replaced atomically on every change;
2. Docker's ``config.json``: ``auths`` entries, ``credHelpers`` and ``credsStore`` (through the
   ``docker-credential-<name>`` helper programs, when they are installed);
3. for Amazon ECR hosts, a token from ``ecr:GetAuthorizationToken`` (the AWS credentials chain):
   a ``CredentialSource`` the wiring injects (``adapters/aws/ecr_auth.py``), never imported here.

Paths are passed in: the CLI edge resolves ``$PORTWARDEN_HOME`` and ``$DOCKER_CONFIG``. Secrets are
never logged, never part of an error message, and ``repr`` of a credential hides them.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import logging
import os
import re
import secrets
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.errors import ConfigurationError, InvalidReferenceError, RegistryAuthError

# The models (the entries shown, the reference parser, the ports) load pydantic: a lookup, which the
# registry rescan's memo makes (``cli.registry_memo``), needs none of them.
if TYPE_CHECKING:
    from portwarden.adapters.http.registry_entry import RegistryEntry
    from portwarden.core.ports import CredentialSource

logger = logging.getLogger(__name__)

REGISTRIES_FILE = "registries.json"
DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
_HELPER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ---- Portwarden's own store ------------------------------------------------------------------------


class PortwardenCredentialStore:
    """``<home>/registries.json``: ``{host: {username, password, insecure}}``, mode 0600.

    An entry with an empty username carries no credentials: it only marks a host insecure.
    """

    def __init__(self, home: Path) -> None:
        self._home = home
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._home / REGISTRIES_FILE

    def add(
        self, host: str, username: str = "", password: str = "", *, insecure: bool = False
    ) -> RegistryEntry:
        """Store a registry; without username and password the entry only records ``insecure``."""
        from portwarden.adapters.http.registry_entry import RegistryEntry

        key = _valid_host(host)
        if username and not password:
            raise ConfigurationError(f"registry {key}: a password (or token) is required with a username")
        if password and not username:
            raise ConfigurationError(f"registry {key}: a username is required with a password")
        with self._lock:
            entries = self._load()
            entries[key] = {"username": username, "password": password, "insecure": insecure}
            self._save(entries)
        return RegistryEntry(host=key, username=username, insecure=insecure)

    def list(self) -> list[RegistryEntry]:
        from portwarden.adapters.http.registry_entry import RegistryEntry

        return [
            RegistryEntry(host=host, username=entry["username"], insecure=entry["insecure"])
            for host, entry in sorted(self._load().items())
        ]

    def delete(self, host: str) -> bool:
        key = normalize_registry_host(host)
        with self._lock:
            entries = self._load()
            if key not in entries:
                return False
            del entries[key]
            self._save(entries)
        return True

    def lookup(self, registry: str) -> RegistryCredential | None:
        entry = self._load().get(normalize_registry_host(registry))
        if entry is None or not entry["username"]:
            return None
        return RegistryCredential(username=entry["username"], password=entry["password"])

    def insecure_registries(self) -> builtins.list[str]:
        return sorted(host for host, entry in self._load().items() if entry["insecure"])

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.path}: {exc.strerror}") from exc
        if mode & 0o077:
            logger.warning("%s is readable by other users (mode %o); it should be 0600", self.path, mode)
        try:
            document = json.loads(raw)
        except ValueError as exc:
            # The message deliberately leaves out the content: it holds passwords.
            raise ConfigurationError(f"{self.path} is not valid JSON") from exc
        if not isinstance(document, dict):
            raise ConfigurationError(f"{self.path} must hold an object of registries")
        entries: dict[str, dict[str, Any]] = {}
        for host, entry in document.items():
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("username"), str)
                or not isinstance(entry.get("password"), str)
                or not isinstance(entry.get("insecure", False), bool)
            ):
                raise ConfigurationError(
                    f"{self.path}: the entry for {host!r} needs a string username and password "
                    "and an optional boolean insecure"
                )
            entries[normalize_registry_host(host)] = {
                "username": entry["username"],
                "password": entry["password"],
                "insecure": entry.get("insecure", False),
            }
        return entries

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        self._home.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps(entries, indent=2, sort_keys=True).encode() + b"\n"
        temporary = self._home / f".{REGISTRIES_FILE}.{secrets.token_hex(6)}.tmp"
        # Created 0600 from the first byte: a file created and then chmod-ed would be readable by
        # others for a moment. O_EXCL refuses to follow a planted symlink.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)  # the umask may have removed bits; never added
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def _valid_host(host: str) -> str:
    """Docker's host rules (core's parser); then Docker Hub's aliases fold into one key."""
    from portwarden.core.image.reference import parse_registry_host

    try:
        return normalize_registry_host(parse_registry_host(host))
    except InvalidReferenceError as exc:
        raise ConfigurationError(str(exc)) from None


# ---- Docker's config.json -----------------------------------------------------------------------

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def default_docker_config_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where Docker looks: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

    The caller passes the environment and home directory, so this stays a pure function.
    """
    configured = environ.get("DOCKER_CONFIG")
    return (Path(configured) if configured else home / ".docker") / "config.json"


class DockerConfigCredentials:
    """Credentials from a Docker ``config.json`` (the path is resolved by the caller).

    Like Docker: a ``credHelpers`` entry for the host wins; otherwise a ``credsStore`` applies;
    plain ``auths`` entries answer when no helper does. A helper is used only when its program is
    on the search path; one that fails (other than "no credentials for that host") is an error,
    because silently pulling anonymously would turn it into a confusing 401 later.
    """

    HELPER_TIMEOUT = 30.0

    def __init__(
        self, config_path: Path, *, search_path: str | None = None, runner: Runner | None = None
    ) -> None:
        self._path = config_path
        self._search_path = search_path
        self._runner: Runner = runner or subprocess.run
        self._config: dict[str, Any] | None = None
        self._helper_answers: dict[str, RegistryCredential | None] = {}
        self._lock = threading.Lock()

    def lookup(self, registry: str) -> RegistryCredential | None:
        host = normalize_registry_host(registry)
        config = self._load()
        helper = self._helper_for(config, host)
        if helper is not None:
            with self._lock:
                if host not in self._helper_answers:
                    server_url = self._server_url(config, host)
                    self._helper_answers[host] = self._ask_helper(helper, server_url, host)
                answer = self._helper_answers[host]
            if answer is not None:
                return answer
        return self._from_auths(config, host)

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            try:
                raw = self._path.read_bytes()
            except FileNotFoundError:
                self._config = {}
                return self._config
            except OSError as exc:
                raise ConfigurationError(f"cannot read {self._path}: {exc.strerror}") from exc
            try:
                document = json.loads(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{self._path} is not valid JSON") from exc
            if not isinstance(document, dict):
                raise ConfigurationError(f"{self._path} must hold a JSON object")
            self._config = document
        return self._config

    def _helper_for(self, config: dict[str, Any], host: str) -> str | None:
        helpers = config.get("credHelpers")
        names: list[str] = []
        if isinstance(helpers, dict):
            names.extend(
                name
                for key, name in helpers.items()
                if isinstance(name, str) and normalize_registry_host(key) == host
            )
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            names.append(store)
        for name in names:
            if not _HELPER_NAME_RE.match(name):
                raise ConfigurationError(f"{self._path}: invalid credential helper name {name!r}")
            if shutil.which(f"docker-credential-{name}", path=self._search_path):
                return name
            logger.debug("credential helper docker-credential-%s is not installed; skipped", name)
        return None

    def _server_url(self, config: dict[str, Any], host: str) -> str:
        """The key a helper stored the secret under: the spelling used in the config, if any."""
        for section in ("credHelpers", "auths"):
            entries = config.get(section)
            if isinstance(entries, dict):
                for key in entries:
                    if normalize_registry_host(key) == host:
                        return str(key)
        return DOCKER_HUB_SERVER_URL if host == "docker.io" else host

    def _ask_helper(self, name: str, server_url: str, host: str) -> RegistryCredential | None:
        program = shutil.which(f"docker-credential-{name}", path=self._search_path)
        if program is None:
            return None
        try:
            completed = self._runner(
                [program, "get"],
                input=server_url.encode(),
                capture_output=True,
                timeout=self.HELPER_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RegistryAuthError(
                f"credential helper docker-credential-{name} could not run for {host}: {type(exc).__name__}"
            ) from exc
        if completed.returncode != 0:
            said = (completed.stderr or completed.stdout or b"").decode(errors="replace").strip()
            if "credentials not found" in said.lower():
                return None
            first_line = said.splitlines()[0][:200] if said else f"exit status {completed.returncode}"
            raise RegistryAuthError(
                f"credential helper docker-credential-{name} failed for {host}: {first_line}"
            )
        malformed = f"credential helper docker-credential-{name} returned malformed output for {host}"
        try:
            answer = json.loads(completed.stdout)
        except ValueError as exc:
            raise RegistryAuthError(malformed) from exc
        if not isinstance(answer, dict):
            raise RegistryAuthError(malformed)
        username, secret = answer.get("Username"), answer.get("Secret")
        if not isinstance(secret, str) or not secret:
            return None
        if username == "<token>":
            return RegistryCredential(username="<token>", password="", identity_token=secret)
        return RegistryCredential(username=username if isinstance(username, str) else "", password=secret)

    def _from_auths(self, config: dict[str, Any], host: str) -> RegistryCredential | None:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            return None
        for key, entry in auths.items():
            if normalize_registry_host(key) != host or not isinstance(entry, dict):
                continue
            identity_token = entry.get("identitytoken")
            if isinstance(identity_token, str) and identity_token:
                username = entry.get("username")
                return RegistryCredential(
                    username=username if isinstance(username, str) and username else "<token>",
                    password="",
                    identity_token=identity_token,
                )
            encoded = entry.get("auth")
            if isinstance(encoded, str) and encoded:
                try:
                    decoded = base64.b64decode(encoded, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise ConfigurationError(f"{self._path}: the auth entry for {key} is not base64") from exc
                username, sep, password = decoded.partition(":")
                if not sep:
                    raise ConfigurationError(f"{self._path}: the auth entry for {key} is not user:password")
                return RegistryCredential(username=username, password=password)
            plain_user, plain_password = entry.get("username"), entry.get("password")
            if isinstance(plain_user, str) and isinstance(plain_password, str) and plain_user:
                return RegistryCredential(username=plain_user, password=plain_password)
        return None


# ---- precedence ------------------------------------------------------------------------------------


class CredentialResolver:
    """Asks each source in turn: Portwarden's store, then Docker's config, then ECR (when injected)."""

    def __init__(
        self,
        store: PortwardenCredentialStore | None = None,
        docker_config: DockerConfigCredentials | None = None,
        ecr: CredentialSource | None = None,
    ) -> None:
        self._store = store
        self._docker = docker_config
        self._ecr = ecr

    def lookup(self, registry: str) -> RegistryCredential | None:
        sources: list[CredentialSource | None] = [self._store, self._docker, self._ecr]
        for source in sources:
            if source is None:
                continue
            credential = source.lookup(registry)
            if credential is not None:
                return credential
        return None

    def insecure_registries(self) -> list[str]:
        """Hosts the user marked insecure when adding them; the client speaks plain HTTP to those."""
        return self._store.insecure_registries() if self._store else []


def build_credential_resolver(
    portwarden_home: Path,
    docker_config_path: Path | None,
    *,
    ecr: CredentialSource | None = None,
) -> CredentialResolver:
    """The usual chain; ``ecr`` is the ECR token source the caller's wiring chose (None: no ECR)."""
    return CredentialResolver(
        store=PortwardenCredentialStore(portwarden_home),
        docker_config=DockerConfigCredentials(docker_config_path) if docker_config_path else None,
        ecr=ecr,
    )
