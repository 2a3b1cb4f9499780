"""Contract tests of the v1 API as ``portwarden serve`` answers it: status codes, Anchore's shapes (what
anchore-cli reads), validation errors, and account isolation on every route family.

Requests go through the WSGI host in-process (Basic auth included); images come from an in-memory
registry and queued analyses run on the test's thread through the worker's own ``run``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dateutil import parser as dateparser

from tests.support.stores import vulnerability_match
from tests.unit.api.support import (
    ADMIN_PASSWORD,
    REGISTRY,
    ServeHarness,
    debian_image,
    encoded,
    serve_harness,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

TAG = f"{REGISTRY}/acme/app:1.0"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ServeHarness]:
    with serve_harness(tmp_path / "home") as running:
        yield running


def add_image(harness: ServeHarness, client: Any = None, tag: str = TAG, **query: str) -> dict[str, Any]:
    client = client or harness.admin
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    answer = client.post("/v1/images" + (f"?{suffix}" if suffix else ""), {"tag": tag})
    assert answer.status == 200, answer.body
    assert isinstance(answer.body, list) and len(answer.body) == 1
    image: dict[str, Any] = answer.body[0]
    return image


def analyzed_image(harness: ServeHarness) -> str:
    harness.push("acme/app", "1.0")
    digest: str = add_image(harness)["imageDigest"]
    assert harness.run_queued() == 1
    return digest


def error_of(answer: Any) -> str:
    assert set(answer.body) >= {"message", "httpcode", "detail"}, answer.body
    assert answer.body["httpcode"] == answer.status
    assert answer.body["detail"]["error_codes"] == []
    message: str = answer.body["message"]
    return message


# ---- system and authentication -------------------------------------------------------------------


def test_v1_root_answers_v1_and_every_route_needs_credentials(harness: ServeHarness) -> None:
    assert harness.admin.get("/v1").body == "v1"
    anonymous = harness.admin.as_user(None, None)
    wrong = harness.admin.as_user("admin", "not-the-password")
    for client in (anonymous, wrong):
        answer = client.get("/v1/images")
        # An empty 401: anchore-cli turns it into "check your username/password"
        assert answer.status == 401 and answer.raw == b""
    # Liveness and version stay public
    assert anonymous.get("/health").status == 200
    assert anonymous.get("/v1/version").status == 200


def test_swagger_document_has_a_dotted_integer_version_at_both_paths(harness: ServeHarness) -> None:
    for path in ("/swagger.json", "/v1/swagger.json"):
        document = harness.admin.get(path).body
        assert re.fullmatch(r"\d+(\.\d+)+", document["info"]["version"])
        assert {"/images", "/policies", "/registries", "/subscriptions", "/events"} <= set(document["paths"])


def test_system_status_services_policy_spec_and_error_codes(harness: ServeHarness) -> None:
    states = harness.admin.get("/v1/system").body["service_states"]
    assert {"apiext", "catalog", "policy_engine", "analyzer"} <= {s["servicename"] for s in states}
    assert all(s["status"] is True and s["service_detail"]["up"] is True for s in states)
    gates = harness.admin.get("/v1/system/policy_spec").body
    vulnerabilities = next(g for g in gates if g["name"] == "vulnerabilities")
    package = next(t for t in vulnerabilities["triggers"] if t["name"] == "package")
    assert {"name", "description", "required", "example", "state"} <= set(package["parameters"][0])
    codes = harness.admin.get("/v1/system/error_codes").body
    assert all(set(code) == {"name", "description"} for code in codes)


def test_feeds_list_has_groups_and_configuration_needs_admin(harness: ServeHarness) -> None:
    feeds = harness.admin.get("/v1/system/feeds").body
    assert feeds[0]["name"] == "vulnerabilities" and feeds[0]["groups"] == []
    disabled = harness.admin.put("/v1/system/feeds/vulnerabilities?enabled=False")
    assert disabled.status == 200 and disabled.body["enabled"] is False
    assert harness.admin.get("/v1/system/feeds").body[0]["enabled"] is False
    user = harness.new_account("team", "dev")
    assert user.get("/v1/system/feeds").status == 200
    assert user.put("/v1/system/feeds/vulnerabilities?enabled=True").status == 403
    assert harness.admin.put("/v1/system/feeds/nope?enabled=True").status == 404


# ---- images --------------------------------------------------------------------------------------


def test_adding_an_image_answers_anchores_record_and_queues_it_once(harness: ServeHarness) -> None:
    digest = harness.push("acme/app", "1.0")

    image = add_image(harness)
    again = add_image(harness)

    assert image["imageDigest"] == again["imageDigest"] == digest
    assert image["analysis_status"] == "not_analyzed" and image["image_type"] == "docker"
    detail = image["image_detail"][0]
    assert detail["fulltag"] == TAG and detail["registry"] == REGISTRY and detail["repo"] == "acme/app"
    dateparser.parse(detail["created_at"])  # anchore-cli parses it
    # The same digest queued twice is one queue entry
    assert harness.host.store.queue.pending() == 1
    assert harness.run_queued() == 1
    analyzed = harness.admin.get(f"/v1/images/{digest}").body[0]
    assert analyzed["analysis_status"] == "analyzed"
    metadata = analyzed["image_content"]["metadata"]
    assert set(metadata) == {
        "arch",
        "distro",
        "distro_version",
        "dockerfile_mode",
        "image_size",
        "layer_count",
    }
    assert (metadata["distro"], metadata["distro_version"], metadata["layer_count"]) == ("debian", "12", 1)
    # Adding an analyzed image again changes nothing and queues nothing
    assert add_image(harness)["analysis_status"] == "analyzed"
    assert harness.host.store.queue.pending() == 0


def test_force_and_dockerfile_and_annotations(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    dockerfile = base64.b64encode(b"FROM scratch\nUSER nobody\n").decode()
    answer = harness.admin.post(
        "/v1/images?force=true",
        {"source": {"tag": {"pullstring": TAG, "dockerfile": dockerfile}}, "annotations": {"team": "a"}},
    )
    assert answer.status == 200 and answer.body[0]["analysis_status"] == "not_analyzed"
    assert answer.body[0]["annotations"] == {"team": "a"}
    assert harness.run_queued() == 1
    image = harness.admin.get(f"/v1/images/{digest}").body[0]
    assert image["image_content"]["metadata"]["dockerfile_mode"] == "Actual"
    served = harness.admin.get(f"/v1/images/{digest}/metadata/dockerfile").body
    assert base64.b64decode(served["metadata"]).decode() == "FROM scratch\nUSER nobody\n"


def test_bad_image_requests_are_400_and_unknown_tags_fail_clearly(harness: ServeHarness) -> None:
    assert harness.admin.post("/v1/images", {"tag": "NOT A REFERENCE"}).status == 400
    assert harness.admin.post("/v1/images", {"tag": TAG, "dockerfile": "not base64!"}).status == 400
    assert harness.admin.post("/v1/images", {}).status == 422
    both = {"source": {"tag": {"pullstring": TAG}, "digest": {"pullstring": "a@sha256:00", "tag": TAG}}}
    assert harness.admin.post("/v1/images", both).status == 400
    missing = harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/acme/missing:1"})
    assert missing.status == 404 and "not found" in error_of(missing)


def test_listing_filters_by_fulltag_status_and_the_legacy_body(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    harness.push("acme/other", "2", marker="two")
    add_image(harness, tag=f"{REGISTRY}/acme/other:2")

    everything = harness.admin.get("/v1/images").body
    assert len(everything) == 2
    by_tag = harness.admin.get(f"/v1/images?fulltag={TAG}&history=false").body
    assert [i["imageDigest"] for i in by_tag] == [digest]
    legacy = harness.admin.call("GET", "/v1/images?history=false", {"tag": TAG}).body
    assert [i["imageDigest"] for i in legacy] == [digest]
    assert len(harness.admin.get("/v1/images?analysis_status=not_analyzed").body) == 1
    assert harness.admin.get("/v1/images?analysis_status=bogus").status == 400


def test_content_metadata_and_sboms_of_an_analyzed_image(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    path = f"/v1/images/{encoded(digest)}"  # URL-encoded, as anchore-cli sends a digest

    assert "os" in harness.admin.get(f"{path}/content").body
    os_rows = harness.admin.get(f"{path}/content/os").body
    assert os_rows["content_type"] == "os"
    assert {row["package"] for row in os_rows["content"]} == {"python3-six", "zlib1g"}
    assert all(isinstance(row["licenses"], list) for row in os_rows["content"])
    npm = harness.admin.get(f"{path}/content/npm").body["content"]
    assert [(r["package"], r["version"]) for r in npm] == [("left-pad", "1.3.0")]
    assert all({"package", "version", "location"} <= set(r) for r in npm)
    files = harness.admin.get(f"{path}/content/files").body["content"]
    assert any(r["filename"] == "/srv/one.txt" and r["size"] == 3 for r in files)
    assert harness.admin.get(f"{path}/content/bogus").status == 404
    manifest = harness.admin.get(f"{path}/metadata/manifest").body
    assert json.loads(base64.b64decode(manifest["metadata"]))["schemaVersion"] == 2
    history = harness.admin.get(f"{path}/metadata/docker_history").body
    assert "ADD file:abc" in base64.b64decode(history["metadata"]).decode()
    cyclonedx = harness.admin.get(f"{path}/sboms/cyclonedx-json").body
    assert cyclonedx["bomFormat"] == "CycloneDX"
    native = harness.admin.get(f"{path}/sboms/native")
    assert native.status == 200 and native.headers["Content-Type"] == "application/gzip"


def test_vulnerability_reports_and_the_not_analyzed_message(harness: ServeHarness) -> None:
    harness.push("acme/app", "1.0")
    digest = add_image(harness)["imageDigest"]
    pending = harness.admin.get(f"/v1/images/{digest}/vuln/all")
    # anchore-cli exits 101 on this exact text
    assert pending.status == 404 and "analysis_status: not_analyzed" in error_of(pending)
    harness.run_queued()
    unmatched = harness.admin.get(f"/v1/images/{digest}/vuln/all")  # no feed synced yet: not "clean"
    assert unmatched.status == 404 and "not been matched" in error_of(unmatched)
    os_match = vulnerability_match(1)
    npm_match = vulnerability_match(2).model_copy(
        update={
            "package": vulnerability_match(2).package.model_copy(update={"type": "npm", "location": "/app"})
        }
    )
    harness.host.store.analyses.put_matches(digest, [os_match, npm_match], None)

    report = harness.admin.get(f"/v1/images/{digest}/vuln/all").body
    assert report["imageDigest"] == digest and report["vulnerability_type"] == "all"
    row = next(v for v in report["vulnerabilities"] if v["vuln"] == os_match.id)
    required = {"vuln", "package", "severity", "fix", "url", "package_type", "feed_group", "package_path"}
    assert required <= set(row) and isinstance(row["nvd_data"], list)
    assert (
        row["package_type"] == "dpkg"
        and row["package"] == f"{os_match.package.name}-{os_match.package.version}"
    )
    assert [v["vuln"] for v in harness.admin.get(f"/v1/images/{digest}/vuln/os").body["vulnerabilities"]] == [
        os_match.id
    ]
    assert [
        v["vuln"] for v in harness.admin.get(f"/v1/images/{digest}/vuln/non-os").body["vulnerabilities"]
    ] == [npm_match.id]
    assert harness.admin.get(f"/v1/images/{digest}/vuln").body == ["os", "non-os", "all"]
    assert harness.admin.get(f"/v1/images/{digest}/vuln/kernel").status == 422
    assert harness.admin.get("/v1/images/latest").status == 422


def test_policy_check_is_keyed_by_digest_then_tag_with_rows_in_detail(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    answer = harness.admin.get(f"/v1/images/{encoded(digest)}/check?history=false&detail=true&tag={TAG}")
    assert answer.status == 200, answer.body
    [keyed] = answer.body
    [evaluation] = keyed[digest][TAG]
    assert evaluation["status"] in ("pass", "fail")
    result = evaluation["detail"]["result"]
    assert {"image_id", "final_action", "final_action_reason"} <= set(result)
    table = result["result"][result["image_id"]]["result"]
    assert table["header"][3:8] == ["Gate", "Trigger", "Check_Output", "Gate_Action", "Whitelisted"]
    assert all(len(row) == 9 for row in table["rows"])
    # A bundle that stops on any package makes the check fail
    stop_all = stop_bundle("stop-all")
    assert harness.admin.post("/v1/policies", stop_all).status == 200
    failing = harness.admin.get(f"/v1/images/{digest}/check?tag={TAG}&policyId=stop-all").body
    assert failing[0][digest][TAG][0]["status"] == "fail"
    assert harness.admin.get(f"/v1/images/{digest}/check?tag={TAG}&policyId=nope").status == 404
    assert harness.admin.get(f"/v1/images/{digest}/check?tag={REGISTRY}/acme/app:other").status == 404


def test_deleting_images(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    harness.push("acme/other", "2", marker="two")
    other = add_image(harness, tag=f"{REGISTRY}/acme/other:2")["imageDigest"]

    deleted = harness.admin.delete(f"/v1/images/{digest}")
    assert deleted.status == 200 and deleted.body["status"] == "deleting"
    assert harness.admin.get(f"/v1/images/{digest}").status == 404
    assert harness.admin.get(f"/v1/images/{digest}/content/os").status == 404
    bulk = harness.admin.delete(f"/v1/images?imageDigests={other},sha256:{'0' * 64}").body
    assert [(r["digest"], r["status"]) for r in bulk] == [
        (other, "deleting"),
        (f"sha256:{'0' * 64}", "not_found"),
    ]


def test_another_accounts_image_is_a_404_on_every_image_route(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    team = harness.new_account("team", "dev")
    paths = [
        f"/v1/images/{digest}",
        f"/v1/images/{digest}/content",
        f"/v1/images/{digest}/content/os",
        f"/v1/images/{digest}/metadata/manifest",
        f"/v1/images/{digest}/vuln/all",
        f"/v1/images/{digest}/check?tag={TAG}",
        f"/v1/images/{digest}/artifacts/secret_search",
        f"/v1/images/{digest}/sboms/spdx-json",
    ]
    for path in paths:
        assert team.get(path).status == 404, path
    assert team.get("/v1/images").body == []
    assert team.get(f"/v1/images?fulltag={TAG}").body == []
    assert team.delete(f"/v1/images/{digest}").status == 404
    assert harness.admin.get(f"/v1/images/{digest}").status == 200
    # The same image added by the other account is its own record, analyzed for it
    assert add_image(harness, team)["analysis_status"] == "not_analyzed"
    assert harness.admin.get(f"/v1/images/{digest}").body[0]["analysis_status"] == "analyzed"


# ---- policies ------------------------------------------------------------------------------------


def stop_bundle(bundle_id: str, gate: str = "always", trigger: str = "always") -> dict[str, Any]:
    return {
        "id": bundle_id,
        "name": bundle_id,
        "version": "1_0",
        "policies": [
            {
                "id": "p1",
                "name": "p1",
                "version": "1_0",
                "rules": [{"id": "r1", "gate": gate, "trigger": trigger, "action": "STOP", "params": []}],
            }
        ],
        "whitelists": [],
        "mappings": [
            {
                "id": "m1",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": ["p1"],
                "whitelist_ids": [],
            }
        ],
    }


def test_policy_lifecycle_with_anchores_list_and_object_shapes(harness: ServeHarness) -> None:
    added = harness.admin.post("/v1/policies?detail=True", stop_bundle("first"))
    assert added.status == 200 and isinstance(added.body, dict)
    assert {"policyId", "active", "policy_source", "created_at", "last_updated"} <= set(added.body)
    assert added.body["active"] is True  # the first bundle of an account is active
    harness.admin.post("/v1/policies", stop_bundle("second"))

    listed = harness.admin.get("/v1/policies?detail=False").body
    assert [(p["policyId"], p["active"]) for p in listed] == [("first", True), ("second", False)]
    fetched = harness.admin.get("/v1/policies/second?detail=True").body
    assert isinstance(fetched, list) and fetched[0]["policybundle"]["id"] == "second"
    # anchore-cli activates by echoing the fetched record back with active: true
    activated = harness.admin.put("/v1/policies/second", {**fetched[0], "active": True})
    assert activated.status == 200
    assert [p["active"] for p in harness.admin.get("/v1/policies").body] == [False, True]
    assert harness.admin.delete("/v1/policies/second").status == 409  # the active one
    assert harness.admin.delete("/v1/policies/first").status == 200
    assert harness.admin.get("/v1/policies/first").status == 404
    events = harness.admin.get("/v1/events?event_type=user.policy").body["results"]
    assert "user.policy.active.updated" in {e["event"]["type"] for e in events}


def test_an_invalid_bundle_is_a_400_listing_every_problem(harness: ServeHarness) -> None:
    bundle = stop_bundle("bad", gate="no_such_gate")
    bundle["policies"][0]["rules"].append(
        {"id": "r2", "gate": "vulnerabilities", "trigger": "no_such_trigger", "action": "WARN", "params": []}
    )
    answer = harness.admin.post("/v1/policies", bundle)
    assert answer.status == 400
    problems = answer.body["detail"]["validation_details"]
    assert any("no_such_gate" in p for p in problems) and any("no_such_trigger" in p for p in problems)
    assert harness.admin.get("/v1/policies").body == []


def test_policies_are_per_account(harness: ServeHarness) -> None:
    harness.admin.post("/v1/policies", stop_bundle("admins"))
    team = harness.new_account("team", "dev")
    assert team.get("/v1/policies").body == []
    assert team.get("/v1/policies/admins").status == 404
    assert team.delete("/v1/policies/admins").status == 404
    assert team.post("/v1/policies", stop_bundle("admins")).body["active"] is True
    assert len(harness.admin.get("/v1/policies").body) == 1


# ---- registries --------------------------------------------------------------------------------------


def registry_body(user: str = "good", verify: bool = True) -> dict[str, Any]:
    return {
        "registry": "reg.example:5000",
        "registry_user": user,
        "registry_pass": "pa55-word",
        "registry_type": "docker_v2",
        "registry_verify": verify,
        "registry_name": "reg.example:5000",
    }


def test_registries_are_validated_and_never_return_the_password(harness: ServeHarness) -> None:
    refused = harness.admin.post("/v1/registries?validate=True", registry_body(user="bad"))
    assert refused.status == 400 and "pa55-word" not in refused.raw.decode()
    added = harness.admin.post("/v1/registries?validate=True", registry_body(verify=False))
    assert added.status == 200 and isinstance(added.body, list)
    record = added.body[0]
    required = {"registry", "registry_user", "registry_type", "registry_verify", "created_at", "last_updated"}
    assert required <= set(record) and record["registry_verify"] is False
    assert harness.probe.probed[-1].registry_pass == "pa55-word"
    for answer in (
        harness.admin.get("/v1/registries"),
        harness.admin.get(f"/v1/registries/{encoded('reg.example:5000')}"),
        harness.admin.put("/v1/registries/reg.example:5000?validate=false", registry_body(user="other")),
    ):
        assert answer.status == 200 and "pa55-word" not in answer.raw.decode()
    assert harness.admin.get("/v1/registries").body[0]["registry_user"] == "other"
    assert harness.admin.post("/v1/registries?validate=false", registry_body()).status == 409
    team = harness.new_account("team", "dev")
    assert team.get("/v1/registries").body == []
    assert team.get("/v1/registries/reg.example:5000").status == 404
    assert harness.admin.delete("/v1/registries/reg.example:5000").status == 200
    assert harness.admin.get("/v1/registries").body == []


def test_an_insecure_registry_entry_makes_pulls_use_plain_http(tmp_path: Path) -> None:
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.core.model.accounts import RegistryRecord
    from portwarden.serve.registry_access import AccountCredentials, insecure_hosts
    from tests.support.stores import BASE_TIME

    with LocalStore(tmp_path / "home") as store:
        store.registries.put_registry(
            RegistryRecord(
                registry="reg.example:5000/team/*",
                registry_user="u",
                registry_pass="p",
                registry_verify=False,
                created_at=BASE_TIME,
                last_updated=BASE_TIME,
            )
        )
        assert insecure_hosts(store.registries.list_registries()) == ["reg.example:5000"]
        credential = AccountCredentials(store.registries).lookup("reg.example:5000")
        assert credential is not None and credential.username == "u"
        assert AccountCredentials(store.registries).lookup("reg.example") is None  # the port must match
        assert AccountCredentials(store.for_account("other").registries).lookup("reg.example:5000") is None

        # The admin account falls back to the machine's credentials (portwarden registry add)
        from portwarden.adapters.http.credentials import PortwardenCredentialStore

        machine = PortwardenCredentialStore(tmp_path / "home")
        machine.add("cli.example:5000", "cli-user", "cli-pass", insecure=True)
        with_fallback = AccountCredentials(store.registries, machine)
        fallback = with_fallback.lookup("cli.example:5000")
        assert fallback is not None and fallback.username == "cli-user"
        assert with_fallback.lookup("reg.example:5000").username == "u"  # type: ignore[union-attr]
        assert machine.insecure_registries() == ["cli.example:5000"]


# ---- subscriptions -------------------------------------------------------------------------------------


def test_adding_an_image_creates_its_tag_subscriptions_and_filters_apply_server_side(
    harness: ServeHarness,
) -> None:
    harness.push("acme/app", "1.0")
    add_image(harness, autosubscribe="False")
    listed = harness.admin.get("/v1/subscriptions").body
    assert {(s["subscription_type"], s["active"]) for s in listed} == {
        ("policy_eval", False),
        ("tag_update", False),
        ("vuln_update", False),
        ("analysis_update", True),
    }
    filtered = harness.admin.get(
        f"/v1/subscriptions?subscription_key={TAG}&subscription_type=vuln_update"
    ).body
    assert [s["subscription_type"] for s in filtered] == ["vuln_update"]
    sid = filtered[0]["subscription_id"]
    updated = harness.admin.put(
        f"/v1/subscriptions/{sid}",
        {"active": True, "subscription_key": TAG, "subscription_type": "vuln_update"},
    )
    assert updated.status == 200 and updated.body[0]["active"] is True
    assert harness.admin.get(f"/v1/subscriptions/{sid}").body[0]["active"] is True
    team = harness.new_account("team", "dev")
    assert team.get("/v1/subscriptions").body == []
    assert team.get(f"/v1/subscriptions/{sid}").status == 404
    assert team.delete(f"/v1/subscriptions/{sid}").status == 404
    assert harness.admin.delete(f"/v1/subscriptions/{sid}").status == 200


def test_watching_a_repository_stores_a_repo_update_subscription(harness: ServeHarness) -> None:
    answer = harness.admin.post(
        f"/v1/repositories?repository={REGISTRY}/acme/app&autosubscribe=True&dryrun=False"
    )
    assert answer.status == 200
    [record] = answer.body
    assert (
        record["subscription_type"] == "repo_update" and record["subscription_key"] == f"{REGISTRY}/acme/app"
    )
    assert json.loads(record["subscription_value"])["autosubscribe"] is True
    repos = harness.admin.get("/v1/subscriptions?subscription_type=repo_update").body
    assert [r["subscription_key"] for r in repos] == [f"{REGISTRY}/acme/app"]


# ---- events ----------------------------------------------------------------------------------------


def test_events_record_analyses_and_page_with_a_boolean_next_page(harness: ServeHarness) -> None:
    digest = analyzed_image(harness)
    broken = debian_image("broken")
    harness.registry.push(REGISTRY, "acme/broken", "1", broken)
    # Its layer is gone: the analysis fails after Resolve
    harness.registry.drop_blob(broken.layers[0].blob(broken.style).digest)
    add_image(harness, tag=f"{REGISTRY}/acme/broken:1")
    harness.run_queued()

    page = harness.admin.get("/v1/events").body
    assert set(page) == {"results", "next_page", "page", "item_count"} and page["next_page"] is False
    types = [r["event"]["type"] for r in page["results"]]
    assert "user.image.analysis.completed" in types and "user.image.analysis.failed" in types
    completed = next(r for r in page["results"] if r["event"]["type"] == "user.image.analysis.completed")
    assert completed["event"]["resource"]["id"] == digest
    assert {"timestamp", "level", "source", "resource"} <= set(completed["event"])
    errors = harness.admin.get("/v1/events?level=ERROR").body["results"]
    assert [r["event"]["type"] for r in errors] == ["user.image.analysis.failed"]
    first = harness.admin.get("/v1/events?limit=1").body
    assert first["next_page"] is True and first["item_count"] == 1
    assert harness.admin.get("/v1/events?event_type=user.*.completed").body["item_count"] == 1
    assert harness.admin.get("/v1/events?since=not-a-time").status == 400

    event_id = completed["generated_uuid"]
    assert (
        harness.admin.get(f"/v1/events/{event_id}").body["event"]["type"] == "user.image.analysis.completed"
    )
    team = harness.new_account("team", "dev")
    assert team.get("/v1/events").body["results"] == []
    assert team.get(f"/v1/events/{event_id}").status == 404
    assert team.delete(f"/v1/events/{event_id}").status == 404
    assert harness.admin.delete(f"/v1/events/{event_id}").status == 200
    assert harness.admin.get(f"/v1/events/{event_id}").status == 404
    assert len(harness.admin.delete("/v1/events").body) >= 1
    assert harness.admin.get("/v1/events").body["results"] == []
    assert harness.admin.get("/v1/event_types").body[0]["subcategories"]


# ---- accounts and users ------------------------------------------------------------------------------


def test_accounts_and_users_as_admin_and_as_a_user(harness: ServeHarness) -> None:
    team = harness.new_account("team", "dev", "dev-secret-1")
    assert harness.admin.get("/v1/account").body["name"] == "admin"
    assert team.get("/v1/account").body == harness.admin.get("/v1/accounts/team").body
    assert team.get("/v1/user").body["username"] == "dev"
    assert {a["name"] for a in harness.admin.get("/v1/accounts").body} == {"admin", "team"}
    assert [u["username"] for u in harness.admin.get("/v1/accounts/team/users").body] == ["dev"]
    # A user sees no other account, and cannot manage accounts
    assert team.get("/v1/accounts").status == 403
    assert team.post("/v1/accounts", {"name": "mine"}).status == 403
    assert team.get("/v1/images", headers={"x-anchore-account": "admin"}).status == 403
    # An admin may act for another account
    harness.push("acme/app", "1.0")
    add_image(harness, team)
    assert len(harness.admin.get("/v1/images", headers={"x-anchore-account": "team"}).body) == 1
    assert harness.admin.get("/v1/images").body == []
    assert harness.admin.get("/v1/images", headers={"x-anchore-account": "ghost"}).status == 404
    # Validation and conflicts
    assert harness.admin.post("/v1/accounts", {"name": "team"}).status == 409
    assert harness.admin.post("/v1/accounts", {"name": "bad/name"}).status == 400
    short = harness.admin.post("/v1/accounts/team/users", {"username": "x", "password": "123"})
    assert short.status == 400


def test_passwords_change_and_disabled_accounts_lose_access(harness: ServeHarness) -> None:
    team = harness.new_account("team", "dev", "dev-secret-1")
    assert team.post("/v1/user/credentials", {"type": "password", "value": "dev-secret-2"}).status == 200
    assert team.get("/v1").status == 401  # the old password no longer works, even cached
    renewed = team.as_user("dev", "dev-secret-2")
    assert renewed.get("/v1").status == 200
    stored = harness.host.store.accounts.get_user("dev")
    assert stored is not None and "dev-secret-2" not in stored.model_dump_json()

    assert harness.admin.delete("/v1/accounts/team").status == 409  # enabled
    assert harness.admin.put("/v1/accounts/team/state", {"state": "disabled"}).status == 200
    assert renewed.get("/v1").status == 401
    assert harness.admin.put("/v1/accounts/admin/state", {"state": "disabled"}).status == 409
    assert harness.admin.delete("/v1/accounts/team").status == 200
    assert harness.admin.get("/v1/accounts/team").status == 404
    assert harness.admin.as_user("admin", ADMIN_PASSWORD).get("/v1").status == 200


# ---- queries ---------------------------------------------------------------------------------------


def test_queries_by_vulnerability_and_by_package_page_within_the_account(harness: ServeHarness) -> None:
    first = analyzed_image(harness)
    harness.push("acme/other", "2", marker="two")
    second = add_image(harness, tag=f"{REGISTRY}/acme/other:2")["imageDigest"]
    harness.run_queued()
    match = vulnerability_match(7)
    harness.host.store.analyses.put_matches(first, [match], None)
    harness.host.store.analyses.put_matches(second, [match, vulnerability_match(8)], None)

    found = harness.admin.get(f"/v1/query/images/by_vulnerability?vulnerability_id={match.id}").body
    assert found["next_page"] is False and found["returned_count"] == 2
    assert {i["image"]["imageDigest"] for i in found["images"]} == {first, second}
    entry = found["images"][0]
    assert entry["image"]["tag_history"][0]["fulltag"].startswith(REGISTRY)
    assert entry["vulnerable_packages"] == [
        {"name": "pkg-7", "version": "1.7.0-1", "type": "dpkg", "namespace": "debian:12", "severity": "High"}
    ]
    by_alias = harness.admin.get("/v1/query/images/by_vulnerability?vulnerability_id=DSA-8").body
    assert [i["image"]["imageDigest"] for i in by_alias["images"]] == [second]
    paged = harness.admin.get(f"/v1/query/images/by_vulnerability?vulnerability_id={match.id}&limit=1").body
    assert paged["returned_count"] == 1 and paged["next_page"] is True
    assert harness.admin.get("/v1/query/images/by_vulnerability").status in (400, 422)

    packages = harness.admin.get("/v1/query/images/by_package?name=zlib1g&package_type=dpkg").body
    assert packages["returned_count"] == 2
    assert packages["images"][0]["packages"][0]["name"] == "zlib1g"
    assert harness.admin.get("/v1/query/images/by_package?name=zlib1g&package_type=npm").body["images"] == []
    left_pad = harness.admin.get("/v1/query/images/by_package?name=left-pad&version=1.3.0").body
    assert left_pad["returned_count"] == 2

    team = harness.new_account("team", "dev")
    assert team.get(f"/v1/query/images/by_vulnerability?vulnerability_id={match.id}").body["images"] == []
    assert team.get("/v1/query/images/by_package?name=zlib1g").body["images"] == []


# ---- SBOM imports --------------------------------------------------------------------------------


SYFT_DOCUMENT = {
    "artifacts": [
        {
            "name": "zlib1g",
            "version": "1:1.2.13.dfsg-1",
            "type": "deb",
            "locations": [{"path": "/var/lib/dpkg/status", "layerID": "sha256:" + "1" * 64}],
            "licenses": [{"value": "Zlib"}],
            "purl": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1",
            "metadataType": "dpkg-db-entry",
            "metadata": {"package": "zlib1g", "source": "zlib"},
        },
        {"name": "left-pad", "version": "1.3.0", "type": "npm", "locations": [{"path": "/app/package.json"}]},
        {"name": "kernel-thing", "version": "1", "type": "linux-kernel-module"},
    ],
    "source": {"type": "image", "target": {"userInput": "registry.test:5000/acme/imported:1"}},
    "distro": {"id": "debian", "versionID": "12", "prettyName": "Debian GNU/Linux 12 (bookworm)"},
    "descriptor": {"name": "syft", "version": "1.18.0"},
    "schema": {
        "version": "16.0.0",
        "url": "https://raw.githubusercontent.com/anchore/syft/main/schema/json/schema-16.0.0.json",
    },
}


def test_an_sbom_import_becomes_an_analyzed_image_of_the_account(harness: ServeHarness) -> None:
    imported_digest = "sha256:" + "ab" * 32
    operation = harness.admin.post("/v1/imports/images").body
    assert operation["status"] == "pending"
    op = operation["uuid"]
    uploaded = harness.admin.post(f"/v1/imports/images/{op}/packages", SYFT_DOCUMENT).body
    dockerfile = harness.admin.call(
        "POST", f"/v1/imports/images/{op}/dockerfile", raw_body=b"FROM debian:12\nUSER app\n"
    ).body
    assert harness.admin.get(f"/v1/imports/images/{op}/packages").body == [uploaded["digest"]]
    request = {
        "source": {
            "import": {
                "operation_uuid": op,
                "digest": imported_digest,
                "tags": ["registry.test:5000/acme/imported:1"],
                "contents": {"packages": uploaded["digest"], "dockerfile": dockerfile["digest"]},
            }
        }
    }
    answer = harness.admin.post("/v1/images", request)
    assert answer.status == 200, answer.body
    assert (
        answer.body[0]["imageDigest"] == imported_digest and answer.body[0]["analysis_status"] == "analyzed"
    )
    os_rows = harness.admin.get(f"/v1/images/{imported_digest}/content/os").body["content"]
    assert [(r["package"], r["licenses"]) for r in os_rows] == [("zlib1g", ["Zlib"])]
    npm_rows = harness.admin.get(f"/v1/images/{imported_digest}/content/npm").body["content"]
    assert [r["package"] for r in npm_rows] == ["left-pad"]
    check = harness.admin.get(f"/v1/images/{imported_digest}/check?tag=registry.test:5000/acme/imported:1")
    assert check.status == 200
    assert harness.admin.get(f"/v1/imports/images/{op}").body["status"] == "complete"
    # The operation is done: importing again with it is refused, and the image is not another account's
    assert harness.admin.post("/v1/images", request).status == 400
    team = harness.new_account("team", "dev")
    assert team.get(f"/v1/images/{imported_digest}").status == 404
    assert team.get(f"/v1/imports/images/{op}").status == 404
    # A document that is not Syft's is refused with what is wrong
    second = harness.admin.post("/v1/imports/images").body["uuid"]
    bad = harness.admin.post(f"/v1/imports/images/{second}/packages", {"components": []}).body["digest"]
    refused = harness.admin.post(
        "/v1/images",
        {
            "source": {
                "import": {
                    "operation_uuid": second,
                    "digest": "sha256:" + "cd" * 32,
                    "contents": {"packages": bad},
                }
            }
        },
    )
    assert refused.status == 400 and "Syft" in error_of(refused)
    assert harness.admin.delete(f"/v1/imports/images/{second}").status == 200
    assert harness.admin.get(f"/v1/imports/images/{second}").status == 404
