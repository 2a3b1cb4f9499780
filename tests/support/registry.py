"""A real distribution registry (Debian's ``docker-registry``, v2.8) on 127.0.0.1 for integration tests.

Three flavours: anonymous, htpasswd basic auth, and token auth against ``token_issuer.TokenIssuer``.
Each runs on a free port with its own storage directory and stops at teardown, always. Images go
in with ``push_layout`` (an OCI layout directory through skopeo: digests preserved, ``--all`` for
indexes) or ``push_image`` (an in-memory ``ocibuild`` image through the registry API, byte for byte).

Plain helpers (``run_registry``, ``push_layout``…) work anywhere; the pytest fixtures at the end
are meant to be imported into a conftest:

    from tests.support.registry import anonymous_registry, basic_auth_registry, token_registry
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import pytest
import requests
import yaml

from portwarden.adapters.http.registry import HttpRegistryClient
from portwarden.core.credentials import RegistryCredential
from portwarden.core.image.reference import ImageReference

from .ocibuild import Blob, Image, ImageIndex
from .token_issuer import Access, TokenIssuer

REGISTRY_BINARY = "docker-registry"
DEFAULT_USERS: Mapping[str, str] = {"alice": "wonderland-Secret-42"}
AuthMode = Literal["anonymous", "basic", "token"]


class RegistryToolMissing(RuntimeError):
    """docker-registry, skopeo or htpasswd is not installed (the CI script installs them via apt)."""


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RegistryToolMissing(
            f"{name} is not installed; integration tests need Debian's docker-registry, skopeo and "
            "apache2-utils (htpasswd)"
        )
    return path


@dataclass
class RunningRegistry:
    host: str
    storage: Path
    auth: AuthMode
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    token_issuer: TokenIssuer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def reference(self, repository: str, tag: str = "latest") -> ImageReference:
        return ImageReference.parse(f"{self.host}/{repository}:{tag}")

    def credential(self, username: str | None = None) -> RegistryCredential | None:
        """A credential for ``username`` (the first configured user by default); None if anonymous."""
        if not self.users:
            return None
        name = username or next(iter(self.users))
        return RegistryCredential(username=name, password=self.users[name])

    def client(self, credential: RegistryCredential | None = None, **options: Any) -> HttpRegistryClient:
        """A client that speaks plain HTTP to this registry, with ``credential`` for it (if any)."""
        source = _FixedCredentials(self.host, credential) if credential else None
        return HttpRegistryClient(source, insecure_registries=[self.host], **options)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class _FixedCredentials:
    host: str
    credential: RegistryCredential

    def lookup(self, registry: str) -> RegistryCredential | None:
        return self.credential if registry == self.host else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def htpasswd_line(username: str, password: str) -> str:
    """bcrypt entry (the only hash distribution accepts) made by ``htpasswd -Bbn``."""
    completed = subprocess.run(
        [require_tool("htpasswd"), "-Bbn", username, password],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return completed.stdout.decode().strip()


def registry_config(
    port: int,
    storage: Path,
    *,
    auth: AuthMode,
    htpasswd_path: Path | None = None,
    token_issuer: TokenIssuer | None = None,
    root_bundle: Path | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "health": {"storagedriver": {"enabled": False}},
    }
    if auth == "basic":
        config["auth"] = {"htpasswd": {"realm": "portwarden-test", "path": str(htpasswd_path)}}
    elif auth == "token":
        if token_issuer is None or root_bundle is None:
            raise ValueError("token auth needs a running TokenIssuer and its root bundle")
        config["auth"] = {
            "token": {
                "realm": token_issuer.realm,
                "service": token_issuer.service,
                "issuer": token_issuer.issuer,
                "rootcertbundle": str(root_bundle),
            }
        }
    return config


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    """Poll ``GET /v2/`` until the registry answers at all (200, or 401 when it wants auth)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited with {process.returncode} during startup:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        try:
            response = requests.get(f"{url}/v2/", timeout=(0.5, 1.0))
        except requests.RequestException:
            time.sleep(0.02)
            continue
        if response.status_code in (200, 401):
            return
        time.sleep(0.02)
    raise RuntimeError(
        f"docker-registry at {url} not ready after {timeout}s:\n" + log_path.read_text()[-4000:]
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def run_registry(
    workdir: Path,
    *,
    auth: AuthMode = "anonymous",
    users: Mapping[str, str] | None = None,
    token_issuer: TokenIssuer | None = None,
    startup_timeout: float = 10.0,
) -> Iterator[RunningRegistry]:
    """Start a registry under ``workdir``; for ``auth="token"`` a token issuer is started too
    unless one is given (a given one is left running: its owner stops it)."""
    binary = require_tool(REGISTRY_BINARY)
    users = dict(DEFAULT_USERS if users is None and auth != "anonymous" else users or {})
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    with ExitStack() as cleanup:
        htpasswd_path: Path | None = None
        root_bundle: Path | None = None
        if auth == "basic":
            htpasswd_path = workdir / "htpasswd"
            htpasswd_path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
        if auth == "token":
            if token_issuer is None:
                token_issuer = TokenIssuer(users=users).start()
                cleanup.callback(token_issuer.stop)
            root_bundle = token_issuer.write_root_bundle(workdir / "token-root.pem")
        log_path = workdir / "registry.log"
        # A port picked free can be taken before the registry binds it; try a few.
        last_error: Exception | None = None
        for _ in range(5):
            port = free_port()
            config = registry_config(
                port,
                storage,
                auth=auth,
                htpasswd_path=htpasswd_path,
                token_issuer=token_issuer,
                root_bundle=root_bundle,
            )
            config_path = workdir / "config.yml"
            config_path.write_text(yaml.safe_dump(config))
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
                )
            try:
                wait_until_ready(f"http://127.0.0.1:{port}", process, log_path, startup_timeout)
            except RuntimeError as exc:
                _stop(process)
                last_error = exc
                if "address already in use" in log_path.read_text(errors="replace"):
                    continue
                raise
            cleanup.callback(_stop, process)
            yield RunningRegistry(
                host=f"127.0.0.1:{port}",
                storage=storage,
                auth=auth,
                process=process,
                log_path=log_path,
                users=users,
                token_issuer=token_issuer if auth == "token" else None,
            )
            return
        raise RuntimeError(f"could not start docker-registry on a free port: {last_error}")


# ---- pushing images --------------------------------------------------------------------------------


def _policy_file(directory: Path) -> Path:
    path = directory / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


def push_layout(
    layout_dir: Path,
    registry: RunningRegistry | str,
    repository: str,
    tag: str,
    *,
    creds: RegistryCredential | None = None,
    source_tag: str | None = None,
) -> str:
    """Copy ``oci:layout_dir:source_tag`` to ``docker://host/repository:tag`` with skopeo.

    Digests are preserved and every platform of an index is copied. ``creds`` defaults to the
    registry's first user when given a RunningRegistry with users. Returns ``host/repository:tag``.
    """
    skopeo = require_tool("skopeo")
    host = registry.host if isinstance(registry, RunningRegistry) else registry.removeprefix("http://")
    if creds is None and isinstance(registry, RunningRegistry):
        creds = registry.credential()
    destination = f"{host}/{repository}:{tag}"
    with tempfile.TemporaryDirectory(prefix="skopeo-") as scratch:
        scratch_dir = Path(scratch)
        command = [
            skopeo,
            "--policy",
            str(_policy_file(scratch_dir)),
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            "--dest-tls-verify=false",
        ]
        if creds is not None:
            command += ["--dest-creds", f"{creds.username}:{creds.password}"]
        else:
            command += ["--dest-no-creds"]
        command += [f"oci:{layout_dir}:{source_tag or tag}", f"docker://{destination}"]
        # An empty auth file keeps skopeo away from the user's own docker/podman logins.
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": scratch,
            "REGISTRY_AUTH_FILE": str(scratch_dir / "auth.json"),
            "TMPDIR": scratch,
        }
        (scratch_dir / "auth.json").write_text("{}")
        completed = subprocess.run(command, capture_output=True, timeout=120, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"skopeo copy to {destination} failed:\n{completed.stderr.decode(errors='replace')}"
        )
    return destination


def push_image(
    target: Image | ImageIndex,
    registry: RunningRegistry,
    repository: str,
    tag: str,
    *,
    creds: RegistryCredential | None = None,
) -> str:
    """Upload ``target`` with plain registry API calls, byte for byte (any media type, including
    Docker schema 2, which skopeo's OCI-layout source cannot read). Returns ``host/repository:tag``."""
    headers = _push_authorization(registry, repository, creds)
    images = target.images if isinstance(target, ImageIndex) else (target,)
    with requests.Session() as session:
        session.headers.update(headers)
        for image in images:
            for blob in image.blobs()[:-1]:
                _upload_blob(session, registry, repository, blob)
            if isinstance(target, ImageIndex):
                _put_manifest(session, registry, repository, image.digest, image.manifest)
        top = target.index if isinstance(target, ImageIndex) else target.manifest
        _put_manifest(session, registry, repository, tag, top)
    return f"{registry.host}/{repository}:{tag}"


def _push_authorization(
    registry: RunningRegistry, repository: str, creds: RegistryCredential | None
) -> dict[str, str]:
    credential = creds or registry.credential()
    if registry.auth == "basic" and credential is not None:
        return {"Authorization": credential.basic_header()}
    if registry.auth == "token" and registry.token_issuer is not None:
        # Straight from the issuer: pushing is set-up, not the token flow under test.
        subject = credential.username if credential else "setup"
        token = registry.token_issuer.issue(subject, [Access("repository", repository, ("pull", "push"))])
        return {"Authorization": f"Bearer {token}"}
    return {}


def _upload_blob(session: requests.Session, registry: RunningRegistry, repository: str, blob: Blob) -> None:
    base = f"{registry.url}/v2/{repository}/blobs"
    if session.head(f"{base}/{blob.digest}", timeout=10).status_code == 200:
        return
    started = session.post(f"{base}/uploads/", timeout=10)
    started.raise_for_status()
    location = urljoin(registry.url, started.headers["Location"])
    separator = "&" if "?" in location else "?"
    finished = session.put(
        f"{location}{separator}digest={blob.digest}",
        data=blob.data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    if finished.status_code != 201:
        raise RuntimeError(f"blob upload {blob.digest} failed: HTTP {finished.status_code} {finished.text}")


def _put_manifest(
    session: requests.Session, registry: RunningRegistry, repository: str, reference: str, manifest: Blob
) -> None:
    response = session.put(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        data=manifest.data,
        headers={"Content-Type": manifest.media_type},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"manifest {reference} upload failed: HTTP {response.status_code} {response.text}")
    served = response.headers.get("Docker-Content-Digest")
    if served != manifest.digest:
        raise RuntimeError(f"registry stored manifest {reference} as {served}, expected {manifest.digest}")


# ---- pytest fixtures -------------------------------------------------------------------------------


@pytest.fixture
def anonymous_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("registry-anonymous"), auth="anonymous") as registry:
        yield registry


@pytest.fixture
def basic_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("registry-basic"), auth="basic") as registry:
        yield registry


@pytest.fixture
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("registry-token"), auth="token") as registry:
        yield registry
