"""The answers ``portwarden serve`` keeps for its busiest reads (``serve/wsgi.py``): identical to what
the resolver answers, and never served after a write that changes them — whoever writes (the API, a
worker, another process on the same store), for whichever account.

Writes from "another process" go through a second ``LocalStore`` on the same home: its own SQLite
connections, as `portwarden feeds sync` from cron or a second CLI would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import GENERATION_TABLES, UNTRACKED_TABLES, LocalStore
from portwarden.core.model.records import AnalysisStatus, DbPointer
from portwarden.core.services.events import record_event
from portwarden.serve.wsgi import CachedAnswer, ResponseCache
from tests.support.stores import image_record, vulnerability_match
from tests.unit.api.support import ServeHarness, serve_harness
from tests.unit.api.test_api_contract import TAG, add_image, analyzed_image, stop_bundle

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ServeHarness]:
    with serve_harness(tmp_path / "home") as running:
        yield running


class ResolverCalls:
    """Counts the requests that reach the resolver (the others were answered from the cache)."""

    def __init__(self, harness: ServeHarness) -> None:
        self.count = 0
        resolver = harness.host.app
        original = resolver.resolve

        def counting(event: Any, context: Any) -> dict[str, Any]:
            self.count += 1
            return original(event, context)

        resolver.resolve = counting  # type: ignore[method-assign]


def other_process(harness: ServeHarness) -> LocalStore:
    return LocalStore(harness.host.home)


def matched(harness: ServeHarness) -> str:
    """An analyzed image with stored matches (CVE-2026-1001 and -1002 on its packages)."""
    digest = analyzed_image(harness)
    with other_process(harness) as store:
        store.analyses.put_matches(digest, [vulnerability_match(1), vulnerability_match(2)], None)
    return digest


def vulns(harness: ServeHarness, digest: str, client: Any = None) -> list[str]:
    answer = (client or harness.admin).get(f"/v1/images/{digest}/vuln/all?vendor_only=false")
    assert answer.status == 200, answer.body
    return sorted(v["vuln"] for v in answer.body["vulnerabilities"])


def check(harness: ServeHarness, digest: str) -> dict[str, Any]:
    answer = harness.admin.get(f"/v1/images/{digest}/check?tag={TAG}")
    assert answer.status == 200, answer.body
    entry: dict[str, Any] = answer.body[0][digest][TAG][0]
    return entry


def listed(client: Any) -> list[str]:
    answer = client.get("/v1/images")
    assert answer.status == 200, answer.body
    return [image["imageDigest"] for image in answer.body]


def test_a_repeated_read_is_answered_from_memory_with_the_same_bytes(harness: ServeHarness) -> None:
    digest = matched(harness)
    check(harness, digest)  # evaluates and stores the evaluation (a write)
    calls = ResolverCalls(harness)
    for url in (
        "/v1/images",
        f"/v1/images/{digest}",
        f"/v1/images/{digest}/vuln/all",
        f"/v1/images/{digest}/vuln/os?vendor_only=false",
        f"/v1/images/{digest}/check?tag={TAG}&detail=true",
    ):
        first = harness.admin.get(url)
        second = harness.admin.get(url)
        assert first.status == second.status == 200, (url, first.body)
        assert first.raw == second.raw
        assert {k: v for k, v in first.headers.items() if k != "x-request-id"} == {
            k: v for k, v in second.headers.items() if k != "x-request-id"
        }
        assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert calls.count == 5
    # Another query string is another answer
    harness.admin.get(f"/v1/images/{digest}/vuln/all?vendor_only=false")
    assert calls.count == 6


def test_routes_outside_the_cached_reads_and_errors_always_reach_the_resolver(harness: ServeHarness) -> None:
    digest = matched(harness)
    calls = ResolverCalls(harness)
    for _ in range(2):
        assert harness.admin.get("/v1/policies").status == 200
        assert harness.admin.get(f"/v1/images/{digest}/content/os").status == 200
        assert harness.admin.get("/v1/images/sha256:" + "0" * 64).status == 404
    assert calls.count == 6


def test_a_new_image_and_a_new_analysis_are_seen_at_once(harness: ServeHarness) -> None:
    digest = matched(harness)
    assert listed(harness.admin) == [digest]
    harness.push("acme/app", "2.0", marker="two")
    second = add_image(harness, tag="registry.test:5000/acme/app:2.0")["imageDigest"]
    assert set(listed(harness.admin)) == {digest, second}
    assert harness.admin.get(f"/v1/images/{second}").body[0]["analysis_status"] == "not_analyzed"
    harness.run_queued()
    assert harness.admin.get(f"/v1/images/{second}").body[0]["analysis_status"] == "analyzed"
    # Analyzed again (forced): the stored matches of the new analysis are the report
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]
    add_image(harness, force="true")
    assert harness.admin.get(f"/v1/images/{digest}").body[0]["analysis_status"] == "not_analyzed"
    assert harness.admin.get(f"/v1/images/{digest}/vuln/all").status == 404
    harness.run_queued()
    assert harness.admin.get(f"/v1/images/{digest}").body[0]["analysis_status"] == "analyzed"


def test_matches_written_by_another_process_are_seen_at_once(harness: ServeHarness) -> None:
    digest = matched(harness)
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]
    # A feed sync from cron: a new database pointer and the image re-matched
    with other_process(harness) as store:
        store.feeds.put_db_pointer(
            DbPointer(
                location="db/vulnerability-2.db",
                sha256="1" * 64,
                built_at=datetime(2026, 12, 1, tzinfo=UTC),
                schema_version=1,
            )
        )
        store.analyses.put_matches(digest, [vulnerability_match(3)], datetime(2026, 12, 1, tzinfo=UTC))
    assert vulns(harness, digest) == ["CVE-2026-1003"]


def test_a_newly_activated_bundle_decides_the_next_check(harness: ServeHarness) -> None:
    digest = matched(harness)
    first = check(harness, digest)
    assert first["status"] == "pass" and check(harness, digest) == first
    assert harness.admin.post("/v1/policies", stop_bundle("stopper")).status == 200
    fetched = harness.admin.get("/v1/policies/stopper").body[0]
    assert harness.admin.put("/v1/policies/stopper", {**fetched, "active": True}).status == 200
    stopped = check(harness, digest)
    assert stopped["policyId"] == "stopper" and stopped["status"] == "fail"
    assert check(harness, digest) == stopped


def test_a_vex_statement_is_applied_to_the_next_report(harness: ServeHarness) -> None:
    from tests.unit.api.test_api_triage_contract import openvex

    digest = matched(harness)
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]
    # pkg-1 is no package of the analysis: the statement names the image's repository instead
    added = harness.admin.post("/v1/vex", openvex("CVE-2026-1001", "registry.test:5000/acme/app"))
    assert added.status == 200, added.body
    assert vulns(harness, digest) == ["CVE-2026-1002"]
    harness.admin.delete(f"/v1/vex/{added.body['id']}")
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]


def test_a_deleted_image_is_gone_from_every_cached_read(harness: ServeHarness) -> None:
    digest = matched(harness)
    check(harness, digest)
    before = [
        harness.admin.get(url)
        for url in (f"/v1/images/{digest}", f"/v1/images/{digest}/vuln/all", f"/v1/images/{digest}/check")
    ]
    assert [answer.status for answer in before] == [200, 200, 200]
    assert listed(harness.admin) == [digest]
    assert harness.admin.delete(f"/v1/images/{digest}").status == 200
    assert listed(harness.admin) == []
    for url in (f"/v1/images/{digest}", f"/v1/images/{digest}/vuln/all", f"/v1/images/{digest}/check"):
        assert harness.admin.get(url).status == 404, url


def test_another_account_and_acting_for_it_never_get_the_admins_answer(harness: ServeHarness) -> None:
    digest = matched(harness)
    team = harness.new_account("team", "dev")
    assert listed(harness.admin) == [digest]
    assert listed(team) == []
    assert team.get(f"/v1/images/{digest}/vuln/all").status == 404
    acting = harness.admin.get("/v1/images", headers={"x-anchore-account": "team"})
    assert acting.status == 200 and acting.body == []
    # The team's own copy: its own answers, and the admin's are unchanged
    add_image(harness, team)
    harness.run_queued()
    assert listed(team) == [digest]
    assert [
        i["imageDigest"] for i in harness.admin.get("/v1/images", headers={"x-anchore-account": "team"}).body
    ] == [digest]
    assert team.get(f"/v1/images/{digest}/vuln/all").status == 404  # not matched in the team's account
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]


def test_a_changed_password_or_disabled_account_takes_effect_on_the_next_request(
    harness: ServeHarness,
) -> None:
    team = harness.new_account("team", "dev", "dev-secret-1")
    assert team.get("/v1/images").status == 200
    assert team.get("/v1/images").status == 200  # the login and the answer from memory
    assert team.post("/v1/user/credentials", {"type": "password", "value": "dev-secret-2"}).status == 200
    assert team.get("/v1/images").status == 401
    renewed = team.as_user("dev", "dev-secret-2")
    assert renewed.get("/v1/images").status == 200
    assert harness.admin.put("/v1/accounts/team/state", {"state": "disabled"}).status == 200
    assert renewed.get("/v1/images").status == 401


def test_an_answer_made_while_the_store_changed_is_not_served_after_it(harness: ServeHarness) -> None:
    digest = matched(harness)
    resolver = harness.host.app
    original = resolver.resolve
    writes = {"left": 1}

    def resolve_then_write(event: Any, context: Any) -> dict[str, Any]:
        answer = original(event, context)
        if writes["left"]:
            writes["left"] -= 1
            # Committed after the answer was read and before it is kept
            with other_process(harness) as store:
                store.analyses.put_matches(digest, [vulnerability_match(7)], None)
        return answer

    resolver.resolve = resolve_then_write  # type: ignore[method-assign]
    assert vulns(harness, digest) == ["CVE-2026-1001", "CVE-2026-1002"]
    assert vulns(harness, digest) == ["CVE-2026-1007"]


def test_background_writes_to_untracked_tables_leave_the_answers_in_memory(harness: ServeHarness) -> None:
    digest = matched(harness)
    calls = ResolverCalls(harness)
    vulns(harness, digest)
    generation = harness.host.store.generation()
    record_event(harness.host.store.events, "user.image.analysis.completed", message="m")
    assert harness.host.store.generation() == generation
    vulns(harness, digest)
    assert calls.count == 1


def test_every_table_is_tracked_by_the_generation_or_said_not_to_be(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "home") as store:
        connection = store._db.connection()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        triggers = {
            (row[0], row[1])
            for row in connection.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            if "store_generation" in row[1]
        }
        assert tables == set(GENERATION_TABLES) | set(UNTRACKED_TABLES)
        assert not set(GENERATION_TABLES) & set(UNTRACKED_TABLES)
        for table in GENERATION_TABLES:
            kinds = {sql.split(" ON ")[0].split()[-1] for name, sql in triggers if name == table}
            assert kinds == {"INSERT", "UPDATE", "DELETE"}, table
        # Each kind of write moves it, committed by any connection
        before = store.generation()
        connection.execute("UPDATE images SET analysis_status = analysis_status")  # no rows: no move
        assert store.generation() == before
        store.catalog.put_image(image_record(1))
        assert store.generation() > before
        moved = store.generation()
        store.for_account("team").catalog.delete_image(image_record(1).image_digest)  # another account's
        assert store.generation() == moved
        store.catalog.delete_image(image_record(1).image_digest)
        assert store.generation() > moved


def test_the_cache_is_bounded_and_drops_the_answers_of_an_older_generation() -> None:
    cache = ResponseCache(max_bytes=1000)
    answer = CachedAnswer(200, (("Content-Type", "application/json"),), b"x" * 200)
    assert cache.get(("a",), 1) is None
    cache.put(("a",), 1, answer)
    assert cache.get(("a",), 1) == answer
    # An answer made at another generation than the current one is not kept
    cache.put(("b",), 0, answer)
    assert cache.get(("b",), 1) is None
    for n in range(10):
        cache.put((n,), 1, answer)
    assert len(cache) == 5  # 1000 bytes of 200-byte answers; the oldest went first
    assert cache.get(("a",), 1) is None and cache.get((9,), 1) == answer
    # A larger body than a quarter of the bound is never kept
    cache.put(("big",), 1, CachedAnswer(200, (), b"x" * 300))
    assert cache.get(("big",), 1) is None
    # A new generation empties it; a late reader of the older one neither reads nor refills it
    assert cache.get((9,), 2) is None and len(cache) == 0
    cache.put((9,), 1, answer)
    assert cache.get((9,), 1) is None and cache.get((9,), 2) is None


def test_threads_of_two_accounts_reading_while_images_are_added_get_only_their_own(
    harness: ServeHarness,
) -> None:
    admin_digest = matched(harness)
    team = harness.new_account("team", "dev")
    stop = threading.Event()
    problems: list[str] = []
    added: list[str] = []
    readers = 6
    everyone_reading = threading.Barrier(readers + 1)

    def writer() -> None:
        # Images added to the team's account one after another (each moves the generation), while
        # every reader is reading
        everyone_reading.wait(timeout=60)
        with other_process(harness) as store:
            team_store = store.for_account("team")
            base = team_store.catalog
            for n in range(40):
                image = harness.host.store.catalog.get_image(admin_digest)
                assert image is not None
                digest = "sha256:" + f"{n + 1:x}".rjust(64, "f")
                base.put_image(
                    image.model_copy(
                        update={"image_digest": digest, "analysis_status": AnalysisStatus.NOT_ANALYZED}
                    )
                )
                added.append(digest)
                time.sleep(0.005)
        stop.set()

    def reader(client: Any, expect_admin: bool) -> None:
        listed(client)
        everyone_reading.wait(timeout=60)
        while not stop.is_set():
            seen_before = set(added)
            digests = listed(client)
            if expect_admin and digests != [admin_digest]:
                problems.append(f"admin saw {digests}")
            if not expect_admin:
                if admin_digest in digests:
                    problems.append("the team saw the admin's image")
                if not seen_before <= set(digests):
                    problems.append(f"the team missed {sorted(seen_before - set(digests))[:2]}")

    threads = [threading.Thread(target=reader, args=(harness.admin, True)) for _ in range(readers // 2)]
    threads += [threading.Thread(target=reader, args=(team, False)) for _ in range(readers // 2)]
    for thread in threads:
        thread.start()
    writer()
    for thread in threads:
        thread.join(timeout=120)
    assert not problems, problems[:5]
    assert set(listed(team)) == set(added) and len(added) == 40
