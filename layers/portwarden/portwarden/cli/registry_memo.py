"""The registry rescan's memo: a stored document printed after the registry says the tag is unchanged.

A plain ``sbom`` request for a registry image (``cli.stored_sbom``) resolves the tag over HTTP
(manifest, index entries, config) before it can look the stored document up. Resolving is a function
of what the registry answered: each manifest's bytes, media type and digest, and the config's bytes
(checked against their digests by the core). Once such a request has been answered from a stored
document, or has stored one, what resolving fetched (``FetchRecorder``: the registry client's answers
up to the config) and the document's place in the result cache are kept as a ``RegistryAnswer``,
under ``request_memo.memo_key`` (the request, the settings variables, the code).

The next identical request asks the registry the same questions again, with the standard library's
``http.client`` instead of requests and without loading pydantic or the models (TLS, verified with
the CA bundle requests uses: ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or certifi's, only for a
registry not marked insecure): the manifests by the same names, with
the same Accept header, then the config blob. Credentials come from the very lookup the registry
client makes (``adapters.http.credentials``: Portwarden's store, then Docker's config and its
credential helpers), looked up again for every request, and the registry's challenge is answered as
the client answers it (``Basic`` with the credential, ``Bearer`` with a token from the realm). Only
when every answer is ``200`` with the same bytes, media type and digest as remembered (a tag that moved
answers other bytes) is the stored document printed, verified as ``rendering.read_rendering``
verifies it. Anything else (another answer, a redirect, a ``401`` after the credential, a transient
error, a timeout, an ECR host, a proxy or a ``.netrc`` that requests would use, an identity token)
is a miss: the request goes the full way, which asks the registry again and reports
what it says exactly as before, and writes the memo again on success.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from portwarden.cli.environment import local_home, settings_environment

if TYPE_CHECKING:
    from collections.abc import Sequence
    from http.client import HTTPConnection

    from portwarden.adapters.http.auth import AuthChallenge
    from portwarden.cli.stored_sbom import StoredRequest
    from portwarden.core.credentials import RegistryCredential
    from portwarden.core.image.reference import ImageReference
    from portwarden.core.image.replay import StoredAnswer
    from portwarden.core.ports import FetchedManifest, RegistryClient

REGISTRY_MEMO_FORMAT = 1
_MEMO_DIRECTORY = "analyses/registry-requests"
# The registry client's caps (``adapters.http.registry``): a manifest answer larger than this was never
# remembered; a config is at most ``SafetyLimits.max_config_bytes`` (8 MiB by default).
_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_CONFIG_BYTES = 64 * 1024 * 1024
_MAX_SMALL_BODY = 64 * 1024
_TIMEOUT = 10.0
# ``adapters.http.registry.USER_AGENT`` (that module loads requests).
USER_AGENT = "portwarden/0.1"
# requests' CA bundle variables, in its order of precedence (certifi's bundle when neither is set).
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class ManifestFetch:
    """One ``fetch_manifest`` of the resolution: what was asked and what the client answered."""

    reference: str  # the tag or digest in the URL
    reference_digest: str | None  # the reference's digest, when it named one (the client's fallback)
    accept: tuple[str, ...]
    sha256: str
    size: int
    media_type: str
    digest: str


@dataclass(frozen=True)
class RegistryAnswer:
    """What resolving a registry request fetched, and where its stored document is."""

    registry: str
    api_host: str
    repository: str
    manifests: tuple[ManifestFetch, ...]
    config_digest: str
    result_key: str
    manifest_digest: str
    rendering: str
    max_bytes: int

    def to_json(self) -> bytes:
        shape = {
            "format": REGISTRY_MEMO_FORMAT,
            "registry": self.registry,
            "api_host": self.api_host,
            "repository": self.repository,
            "manifests": [
                [m.reference, m.reference_digest, list(m.accept), m.sha256, m.size, m.media_type, m.digest]
                for m in self.manifests
            ],
            "config_digest": self.config_digest,
            "result_key": self.result_key,
            "manifest_digest": self.manifest_digest,
            "rendering": self.rendering,
            "max_bytes": self.max_bytes,
        }
        return json.dumps(shape, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RegistryAnswer | None:
        """The answer ``to_json`` wrote; None for anything else."""
        try:
            shape: Any = json.loads(data)
            if not isinstance(shape, dict) or shape.get("format") != REGISTRY_MEMO_FORMAT:
                return None
            manifests = []
            for reference, reference_digest, accept, sha256, size, media_type, digest in shape["manifests"]:
                texts = (reference, sha256, media_type, digest)
                if not all(isinstance(text, str) for text in texts) or not isinstance(size, int):
                    return None
                if reference_digest is not None and not isinstance(reference_digest, str):
                    return None
                if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
                    return None
                manifests.append(
                    ManifestFetch(
                        reference, reference_digest, tuple(accept), sha256, size, media_type, digest
                    )
                )
            names = (
                "registry",
                "api_host",
                "repository",
                "config_digest",
                "result_key",
                "manifest_digest",
                "rendering",
            )
            if not all(isinstance(shape[name], str) for name in names):
                return None
            if not manifests or not isinstance(shape["max_bytes"], int):
                return None
            return cls(
                registry=shape["registry"],
                api_host=shape["api_host"],
                repository=shape["repository"],
                manifests=tuple(manifests),
                config_digest=shape["config_digest"],
                result_key=shape["result_key"],
                manifest_digest=shape["manifest_digest"],
                rendering=shape["rendering"],
                max_bytes=shape["max_bytes"],
            )
        except (ValueError, KeyError, TypeError):
            return None


class FetchRecorder:
    """Keeps what the registry clients of one request answered while resolving (see the docstring).

    The resolution fetches the manifests, then the config blob: the first blob opened ends it, and
    nothing fetched afterwards (the layers, on a thread pool) is kept. A request to another
    repository, or any other call, makes the resolution one that cannot be replayed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._where: tuple[str, str, str] | None = None
        self._manifests: list[ManifestFetch] = []
        self._config_digest: str | None = None
        self._replayable = True

    def wrap(
        self, factory: Callable[[ImageReference], RegistryClient]
    ) -> Callable[[ImageReference], RegistryClient]:
        def recording(ref: ImageReference) -> RegistryClient:
            return _RecordingClient(factory(ref), self)

        return recording

    def _at(self, ref: ImageReference) -> bool:
        where = (ref.registry, ref.api_host, ref.repository)
        if self._where is None:
            self._where = where
        if where != self._where:
            self._replayable = False
        return self._replayable

    def manifest(self, ref: ImageReference, accept: Sequence[str], fetched: FetchedManifest) -> None:
        with self._lock:
            if self._config_digest is not None or not self._at(ref):
                return
            self._manifests.append(
                ManifestFetch(
                    reference=ref.reference,
                    reference_digest=ref.digest,
                    accept=tuple(accept),
                    sha256=hashlib.sha256(fetched.content).hexdigest(),
                    size=len(fetched.content),
                    media_type=fetched.media_type,
                    digest=fetched.digest,
                )
            )

    def blob(self, ref: ImageReference, digest: str) -> None:
        with self._lock:
            if self._config_digest is None and self._at(ref):
                self._config_digest = digest

    def unreplayable(self) -> None:
        with self._lock:
            self._replayable = False

    def answer(self, stored: StoredAnswer) -> RegistryAnswer | None:
        """The memo for ``stored`` (the document this resolution named); None when it cannot be replayed."""
        with self._lock:
            if not self._replayable or self._where is None or not self._manifests:
                return None
            if self._config_digest is None:
                return None
            registry, api_host, repository = self._where
            return RegistryAnswer(
                registry=registry,
                api_host=api_host,
                repository=repository,
                manifests=tuple(self._manifests),
                config_digest=self._config_digest,
                result_key=stored.result_key,
                manifest_digest=stored.manifest_digest,
                rendering=stored.rendering,
                max_bytes=stored.max_bytes,
            )


class _RecordingClient:
    """A registry client that tells a ``FetchRecorder`` what it answered."""

    def __init__(self, client: RegistryClient, recorder: FetchRecorder) -> None:
        self._client = client
        self._recorder = recorder

    def fetch_manifest(self, ref: ImageReference, accept: Sequence[str]) -> FetchedManifest:
        fetched = self._client.fetch_manifest(ref, accept)
        self._recorder.manifest(ref, accept, fetched)
        return fetched

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        stream = self._client.open_blob(ref, digest)
        self._recorder.blob(ref, digest)
        return stream

    def list_tags(self, ref: ImageReference) -> list[str]:
        self._recorder.unreplayable()
        return self._client.list_tags(ref)

    def __getattr__(self, name: str) -> Any:
        self._recorder.unreplayable()
        return getattr(self._client, name)


# ---- the memo --------------------------------------------------------------------------------------


def _memo_path(request: StoredRequest, environment: dict[str, str]) -> str:
    from portwarden.cli.request_memo import memo_key

    return f"{_MEMO_DIRECTORY}/{memo_key(request, environment)}.json"


def remember(request: StoredRequest, recorder: FetchRecorder, stored: StoredAnswer | None) -> None:
    """Keep what resolving ``request`` fetched for the next identical request (best effort)."""
    if stored is None:
        return
    answer = recorder.answer(stored)
    if answer is None:
        return
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.core.errors import StoreError

    environment = settings_environment()
    blobs = FilesystemBlobStore(local_home(environment) / "cache")
    try:
        blobs.put(_memo_path(request, environment), answer.to_json())
    except StoreError:
        return


def remembered_document(request: StoredRequest) -> bytes | None:
    """The stored document of this very request, when the registry answers what it answered then;
    None on any difference (see the module docstring)."""
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.core.image.rendering import read_rendering

    environment = settings_environment()
    if _requests_would_differ(environment):
        return None
    blobs = FilesystemBlobStore(local_home(environment) / "cache")
    raw = blobs.get(_memo_path(request, environment))
    if raw is None:
        return None
    answer = RegistryAnswer.from_json(raw)
    if answer is None or not registry_unchanged(answer, environment):
        return None
    found = read_rendering(
        blobs, answer.result_key, answer.manifest_digest, answer.rendering, answer.max_bytes
    )
    return found.document


def _requests_would_differ(environment: dict[str, str]) -> bool:
    """Whether requests, in the full answer, would use something from the environment the memo's
    ``http.client`` requests do not: a proxy, or ``.netrc`` credentials."""
    if any(name.endswith("_PROXY") and name != "NO_PROXY" for name in environment):
        return True
    if "NETRC" in environment:
        return True
    home = Path(environment.get("HOME") or Path.home())
    return (home / ".netrc").exists() or (home / "_netrc").exists()


def _docker_config_file(environment: dict[str, str]) -> Path:
    """``LocalSettings().docker_config_file`` for this environment."""
    configured = environment.get("DOCKER_CONFIG")
    base = Path(configured) if configured is not None else Path.home() / ".docker"
    return base / "config.json"


def registry_unchanged(answer: RegistryAnswer, environment: dict[str, str]) -> bool:
    """Whether the registry answers every fetch of ``answer`` as it did (see the module docstring)."""
    from portwarden.adapters.aws.ecr_auth import is_ecr_host
    from portwarden.adapters.http.credentials import build_credential_resolver
    from portwarden.core.credentials import normalize_registry_host

    if is_ecr_host(answer.registry):
        return False  # its credential is a token from AWS: the full way
    try:
        resolver = build_credential_resolver(local_home(environment), _docker_config_file(environment))
        insecure = {normalize_registry_host(host) for host in resolver.insecure_registries()}
        plain = answer.registry.lower() in insecure or answer.api_host.lower() in insecure
        with _Replay(
            answer, "http" if plain else "https", lambda: resolver.lookup(answer.registry)
        ) as replay:
            for fetch in answer.manifests:
                if not replay.manifest_unchanged(fetch):
                    return False
            return replay.blob_unchanged(answer.config_digest)
    except Exception:  # any problem is the full answer's to meet and report
        return False


# ---- the requests ----------------------------------------------------------------------------------


class _Miss(Exception):
    """An answer other than the remembered one."""


class _Replay:
    """The requests of one replay, over one kept-alive connection, authenticated as the registry
    client authenticates (``adapters.http.registry.HttpRegistryClient._get``)."""

    def __init__(
        self, answer: RegistryAnswer, scheme: str, credential: Callable[[], RegistryCredential | None]
    ):
        self._answer = answer
        self._scheme = scheme
        self._credential = credential
        self._connection: HTTPConnection | None = None
        self._authorization: str | None = None

    def __enter__(self) -> _Replay:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._connection is not None:
            self._connection.close()

    def manifest_unchanged(self, fetch: ManifestFetch) -> bool:
        path = f"/v2/{self._answer.repository}/manifests/{fetch.reference}"
        status, headers, body = self._get(path, fetch.accept, fetch.size)
        if status != 200 or len(body) != fetch.size or hashlib.sha256(body).hexdigest() != fetch.sha256:
            return False
        media_type = headers.get("content-type", "").split(";", 1)[0].strip()
        # The client's digest: the header's when well formed, else the one asked for, else the content's.
        header_digest = headers.get("docker-content-digest", "").strip()
        if _is_digest(header_digest):
            digest = header_digest
        elif fetch.reference_digest:
            digest = fetch.reference_digest
        else:
            digest = "sha256:" + fetch.sha256
        return media_type == fetch.media_type and digest == fetch.digest

    def blob_unchanged(self, digest: str) -> bool:
        if not _is_digest(digest):
            return False
        status, _, body = self._get(f"/v2/{self._answer.repository}/blobs/{digest}", (), _MAX_CONFIG_BYTES)
        algorithm, _, expected = digest.partition(":")
        return status == 200 and hashlib.new(algorithm, body).hexdigest() == expected

    def _get(self, path: str, accept: Sequence[str], size: int) -> tuple[int, dict[str, str], bytes]:
        from portwarden.adapters.http.auth import parse_www_authenticate, pick_challenge

        sent = self._authorization
        status, headers, body = self._send(path, accept, sent, size)
        if status == 401:
            challenge = pick_challenge(parse_www_authenticate(headers.get("www-authenticate", "")))
            if challenge is None:
                raise _Miss
            self._authorization = self._authorize(challenge)
            if self._authorization == sent and not challenge.is_bearer:
                raise _Miss
            status, headers, body = self._send(path, accept, self._authorization, size)
        return status, headers, body

    def _authorize(self, challenge: AuthChallenge) -> str:
        from portwarden.adapters.http.auth import pull_scope

        credential = self._credential()
        if challenge.is_basic and credential is not None:
            return credential.basic_header()
        if not challenge.is_bearer or (credential is not None and credential.identity_token):
            raise _Miss
        realm = urlsplit(challenge.realm or "")
        if realm.scheme not in ("http", "https") or not realm.netloc:
            raise _Miss
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(
            ("scope", scope) for scope in (challenge.scope or pull_scope(self._answer.repository)).split()
        )
        headers = {"Accept": "application/json"}
        if credential is not None:
            headers["Authorization"] = credential.basic_header()
            params.append(("account", credential.username))
        query = "&".join(part for part in (realm.query, urlencode(params)) if part)
        connection = _connect(realm.scheme, realm.netloc)
        try:
            status, _, body = _exchange(connection, f"{realm.path or '/'}?{query}", headers, _MAX_SMALL_BODY)
        finally:
            connection.close()
        if status != 200:
            raise _Miss
        document = json.loads(body)
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise _Miss
        return f"Bearer {token}"

    def _send(
        self, path: str, accept: Sequence[str], authorization: str | None, size: int
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {}
        if accept:
            headers["Accept"] = ", ".join(accept)
        if authorization:
            headers["Authorization"] = authorization
        if self._connection is None:
            self._connection = _connect(self._scheme, self._answer.api_host)
        status, answer_headers, body = _exchange(self._connection, path, headers, max(size, _MAX_SMALL_BODY))
        if status in (301, 302, 303, 307, 308) or status == 429 or status >= 500:
            raise _Miss  # followed or retried by the client: the full way
        return status, answer_headers, body


def _is_digest(text: str) -> bool:
    algorithm, _, value = text.partition(":")
    lengths = {"sha256": 64, "sha512": 128}
    return (
        algorithm in lengths
        and len(value) == lengths[algorithm]
        and all(c in "0123456789abcdef" for c in value)
    )


def _connect(scheme: str, netloc: str) -> HTTPConnection:
    import http.client

    if scheme == "http":
        return http.client.HTTPConnection(netloc, timeout=_TIMEOUT)
    import ssl

    bundle = next((os.environ[name] for name in _CA_BUNDLE_VARIABLES if os.environ.get(name)), None)
    if bundle is None:
        import certifi  # the CA bundle requests verifies with by default

        bundle = certifi.where()
    if Path(bundle).is_dir():
        context = ssl.create_default_context(capath=bundle)
    else:
        context = ssl.create_default_context(cafile=bundle)
    return http.client.HTTPSConnection(netloc, timeout=_TIMEOUT, context=context)


def _exchange(
    connection: HTTPConnection, path: str, headers: dict[str, str], cap: int
) -> tuple[int, dict[str, str], bytes]:
    """One GET: the status, the headers (names lowercased) and the body (a ``_Miss`` past ``cap``)."""
    connection.request("GET", path, headers={"User-Agent": USER_AGENT, **headers})
    response = connection.getresponse()
    body = response.read(cap + 1)
    if len(body) > cap:
        connection.close()
        raise _Miss
    if not response.isclosed():  # more than we read: the connection cannot carry another request
        connection.close()
    answered: dict[str, str] = {}
    for name, value in response.getheaders():  # repeated headers joined, as requests joins them
        key = name.lower()
        answered[key] = f"{answered[key]}, {value}" if key in answered else value
    return response.status, answered, body
