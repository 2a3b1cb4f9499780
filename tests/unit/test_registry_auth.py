"""Registry authentication without a network: challenges, tokens, retry timing, and the client's
auth flow against an in-process fake session."""

from __future__ import annotations

import base64
import email.utils
import io
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3

from portwarden.adapters.http.auth import (
    TokenCache,
    parse_www_authenticate,
    pick_challenge,
)
from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy
from portwarden.core.credentials import RegistryCredential, normalize_registry_host
from portwarden.core.errors import ImageSourceError, RegistryAuthError
from portwarden.core.image.reference import ImageReference
from portwarden.core.ports import RegistryClient

# ---- WWW-Authenticate parsing ----------------------------------------------------------------------


def test_bearer_challenge_with_quoted_parameters() -> None:
    [challenge] = parse_www_authenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull"'
    )
    assert challenge.is_bearer
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scope == "repository:team/app:pull"


def test_commas_and_escapes_inside_quotes_stay_in_the_value() -> None:
    [challenge] = parse_www_authenticate(
        'Bearer realm="https://a/token", scope="repository:x:pull,push", error="insufficient_scope", '
        'detail="say \\"hi\\""'
    )
    assert challenge.scope == "repository:x:pull,push"
    assert challenge.error == "insufficient_scope"
    assert challenge.params["detail"] == 'say "hi"'


def test_parameter_names_are_case_insensitive_and_values_may_be_bare_tokens() -> None:
    [challenge] = parse_www_authenticate("bearer Realm=https://a/token , Service=reg")
    assert challenge.is_bearer
    assert challenge.realm == "https://a/token"
    assert challenge.service == "reg"


def test_several_challenges_in_one_header_and_bearer_is_preferred() -> None:
    challenges = parse_www_authenticate('Basic realm="registry", Bearer realm="https://a/token",service="s"')
    assert [c.scheme for c in challenges] == ["Basic", "Bearer"]
    assert challenges[0].realm == "registry"
    picked = pick_challenge(challenges)
    assert picked is not None and picked.is_bearer


def test_basic_only_and_empty_headers() -> None:
    basic = pick_challenge(parse_www_authenticate('Basic realm="Registry Realm"'))
    assert basic is not None and basic.is_basic and basic.realm == "Registry Realm"
    assert parse_www_authenticate("") == []
    assert pick_challenge([]) is None
    # A bearer challenge without a realm cannot be followed.
    assert pick_challenge(parse_www_authenticate('Bearer service="x"')) is None


# ---- hosts and credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("http://Registry.Example.com:5000/", "registry.example.com:5000"),
        ("ghcr.io/owner/repo", "ghcr.io"),
        ("localhost:5000", "localhost:5000"),
    ],
)
def test_registry_hosts_normalize(text: str, expected: str) -> None:
    assert normalize_registry_host(text) == expected


def test_credential_repr_and_str_hide_the_secret() -> None:
    credential = RegistryCredential(username="alice", password="s3cr3t-pw", identity_token="idtok-xyz")
    for rendered in (repr(credential), str(credential), f"{credential}"):
        assert "s3cr3t-pw" not in rendered
        assert "idtok-xyz" not in rendered
        assert "alice" in rendered
    assert credential.basic_header() == "Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode()


# ---- token cache -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_cache_serves_until_shortly_before_expiry() -> None:
    clock = FakeClock()
    cache = TokenCache(clock=clock, refresh_margin=10)
    cache.put("reg", "repository:a:pull", "tok-a", expires_in=300)
    assert cache.get("reg", "repository:a:pull") == "tok-a"
    assert cache.get("reg", "repository:b:pull") is None
    assert cache.get("other", "repository:a:pull") is None
    clock.now += 289
    assert cache.get("reg", "repository:a:pull") == "tok-a"
    clock.now += 1  # 290 s: within the 10 s margin of expiry
    assert cache.get("reg", "repository:a:pull") is None
    assert len(cache) == 0


def test_token_without_lifetime_lives_sixty_seconds() -> None:
    clock = FakeClock()
    cache = TokenCache(clock=clock, refresh_margin=10)
    cache.put("reg", "s", "tok", expires_in=None)
    clock.now += 49
    assert cache.get("reg", "s") == "tok"
    clock.now += 1
    assert cache.get("reg", "s") is None


def test_very_short_tokens_are_still_cached_for_half_their_life() -> None:
    clock = FakeClock()
    cache = TokenCache(clock=clock, refresh_margin=10)
    cache.put("reg", "s", "tok", expires_in=4)
    clock.now += 1.9
    assert cache.get("reg", "s") == "tok"
    clock.now += 0.1
    assert cache.get("reg", "s") is None


def test_invalidate_drops_one_scope_only() -> None:
    cache = TokenCache(clock=FakeClock())
    cache.put("reg", "a", "ta", 300)
    cache.put("reg", "b", "tb", 300)
    cache.invalidate("reg", "a")
    assert cache.get("reg", "a") is None
    assert cache.get("reg", "b") == "tb"


# ---- retry timing ----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_is_bounded() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    rng = random.Random(7)
    for attempt, nominal in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(50)]
        assert all(nominal * 0.5 <= d <= nominal for d in delays)
        assert len(set(delays)) > 1  # jittered, not constant


def test_retry_after_seconds_dates_caps_and_garbage() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert policy.retry_after("3") == 3.0
    assert policy.retry_after("600") == 30.0
    assert policy.retry_after(None) is None
    assert policy.retry_after("soon") is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert policy.retry_after(date, now=lambda: now) == pytest.approx(12, abs=1)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert policy.retry_after(past, now=lambda: now) == 0.0


# ---- the client's auth flow, against a fake session -------------------------------------------------


def make_response(
    url: str, status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.headers.update({"Content-Length": str(len(payload)), **(headers or {})})
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(payload), headers=response.headers, status=status, preload_content=False
    )
    return response


class FakeSession(requests.Session):
    """Answers requests with a handler function and records them; nothing touches the network."""

    def __init__(self, handler: Callable[[str, str, dict[str, str], Any], requests.Response]) -> None:
        super().__init__()
        self.handler = handler
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        headers = dict(kwargs.get("headers") or {})
        assert kwargs.get("timeout") is not None, "every request needs a timeout"
        self.calls.append((str(method), str(url), headers))
        return self.handler(str(method), str(url), headers, kwargs.get("params"))


MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'


def bearer_registry(token_requests: list[Any]) -> Callable[..., requests.Response]:
    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        if url.startswith("https://auth.example.test/token"):
            token_requests.append((params, headers.get("Authorization")))
            scope = dict(params)["scope"]
            return make_response(url, 200, {"token": f"tok-for-{scope}", "expires_in": 300})
        repository = url.split("/v2/", 1)[1].rsplit("/manifests/", 1)[0]
        if headers.get("Authorization") == f"Bearer tok-for-repository:{repository}:pull":
            return make_response(
                url, 200, MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            )
        challenge = (
            'Bearer realm="https://auth.example.test/token",service="reg.example.test",'
            f'scope="repository:{repository}:pull"'
        )
        return make_response(
            url, 401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge}
        )

    return handler


class StaticCredentials:
    def __init__(self, credential: RegistryCredential | None) -> None:
        self.credential = credential
        self.lookups: list[str] = []

    def lookup(self, registry: str) -> RegistryCredential | None:
        self.lookups.append(registry)
        return self.credential


def test_the_client_satisfies_the_port() -> None:
    client: RegistryClient = HttpRegistryClient()
    assert isinstance(client, HttpRegistryClient)


def test_bearer_flow_caches_the_token_per_scope_and_authenticates_up_front_afterwards() -> None:
    token_requests: list[Any] = []
    session = FakeSession(bearer_registry(token_requests))
    credentials = StaticCredentials(RegistryCredential("alice", "pw-123"))
    client = HttpRegistryClient(credentials, session=session)
    ref = ImageReference.parse("reg.example.test/team/app:1.0")

    first = client.fetch_manifest(ref, ["application/vnd.oci.image.manifest.v1+json"])
    assert first.content == MANIFEST
    assert len(token_requests) == 1
    params, authorization = token_requests[0]
    assert ("service", "reg.example.test") in params
    assert ("scope", "repository:team/app:pull") in params
    assert authorization == RegistryCredential("alice", "pw-123").basic_header()

    calls_before = len(session.calls)
    client.fetch_manifest(ref, ["application/vnd.oci.image.manifest.v1+json"])
    assert len(token_requests) == 1, "the cached token is reused"
    assert len(session.calls) == calls_before + 1, "no 401 round trip once the token is cached"

    # Another repository: a new scope, a new token — fetched up front, without a 401 first.
    calls_before = len(session.calls)
    client.fetch_manifest(ImageReference.parse("reg.example.test/team/other:1"), ["x"])
    assert len(token_requests) == 2
    assert len(session.calls) == calls_before + 2  # token + manifest
    assert all(url.startswith("https://") for _, url, _ in session.calls)


def test_registries_are_https_unless_marked_insecure_even_localhost() -> None:
    seen: list[str] = []

    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        seen.append(url)
        return make_response(url, 200, MANIFEST, {"Content-Type": "application/json"})

    for host in ("localhost:5000", "127.0.0.1:5000"):
        HttpRegistryClient(session=FakeSession(handler)).fetch_manifest(
            ImageReference.parse(f"{host}/a:1"), ["x"]
        )
    HttpRegistryClient(session=FakeSession(handler), insecure_registries=["localhost:5000"]).fetch_manifest(
        ImageReference.parse("localhost:5000/a:1"), ["x"]
    )
    assert seen == [
        "https://localhost:5000/v2/a/manifests/1",
        "https://127.0.0.1:5000/v2/a/manifests/1",
        "http://localhost:5000/v2/a/manifests/1",
    ]


def test_docker_hub_references_go_to_the_api_host() -> None:
    seen: list[str] = []

    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        seen.append(url)
        return make_response(url, 200, MANIFEST)

    HttpRegistryClient(session=FakeSession(handler)).fetch_manifest(ImageReference.parse("nginx"), ["x"])
    assert seen == ["https://registry-1.docker.io/v2/library/nginx/manifests/latest"]


def test_refused_basic_credentials_name_the_registry_but_never_the_password() -> None:
    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        return make_response(url, 401, b"", {"WWW-Authenticate": 'Basic realm="r"'})

    session = FakeSession(handler)
    client = HttpRegistryClient(
        StaticCredentials(RegistryCredential("bob", "hunter2-secret")), session=session
    )
    with pytest.raises(RegistryAuthError) as caught:
        client.fetch_manifest(ImageReference.parse("reg.example.test/app:1"), ["x"])
    message = str(caught.value)
    assert "reg.example.test" in message and "bob" in message
    assert "hunter2-secret" not in message
    assert len(session.calls) == 2  # anonymous, then basic once: no loop


def test_without_credentials_a_basic_registry_is_a_clear_auth_error() -> None:
    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        return make_response(url, 401, b"", {"WWW-Authenticate": 'Basic realm="r"'})

    with pytest.raises(RegistryAuthError, match="no credentials are configured"):
        HttpRegistryClient(session=FakeSession(handler)).fetch_manifest(
            ImageReference.parse("reg.example.test/app:1"), ["x"]
        )


def test_token_response_may_use_access_token() -> None:
    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        if url.startswith("https://auth.example.test/"):
            return make_response(url, 200, {"access_token": "oauth-style"})
        if headers.get("Authorization") == "Bearer oauth-style":
            return make_response(url, 200, MANIFEST)
        return make_response(
            url, 401, b"", {"WWW-Authenticate": 'Bearer realm="https://auth.example.test/t"'}
        )

    client = HttpRegistryClient(session=FakeSession(handler))
    assert client.fetch_manifest(ImageReference.parse("reg.example.test/app:1"), ["x"]).content == MANIFEST


def test_token_service_refusal_is_an_auth_error_without_the_password() -> None:
    def handler(method: str, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        if url.startswith("https://auth.example.test/"):
            return make_response(url, 401, {"details": "incorrect username or password"})
        return make_response(
            url, 401, b"", {"WWW-Authenticate": 'Bearer realm="https://auth.example.test/t"'}
        )

    client = HttpRegistryClient(
        StaticCredentials(RegistryCredential("carol", "pw-never-shown")), session=FakeSession(handler)
    )
    with pytest.raises(RegistryAuthError) as caught:
        client.fetch_manifest(ImageReference.parse("reg.example.test/app:1"), ["x"])
    assert "token service" in str(caught.value)
    assert "pw-never-shown" not in str(caught.value)


def test_hostile_blob_digests_never_reach_the_network() -> None:
    session = FakeSession(lambda *args: pytest.fail("no request expected"))
    client = HttpRegistryClient(session=session)
    ref = ImageReference.parse("reg.example.test/app:1")
    for digest in ("sha256:../../../etc/passwd", "md5:abc", "sha256:" + "A" * 64):
        with pytest.raises(ImageSourceError, match="invalid blob digest"):
            client.open_blob(ref, digest)
    assert session.calls == []
