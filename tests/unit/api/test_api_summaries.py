"""The dashboard's read routes: ``/summaries/images``, ``/summaries/vulnerabilities``, SARIF, and the
KEV/EPSS fields of vulnerability rows; counts follow rematches and bundle changes, per account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portwarden.adapters.local.sqlite import SqliteAnalysisStore
from portwarden.core.model.records import AnalysisStatus, DbPointer, EvaluationRecord, ImageRecord
from tests.support.stores import analysis_document, digest, vulnerability_match
from tests.unit.api.support import ServeHarness, encoded, serve_harness

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _analyzed(harness: ServeHarness, n: int, matches: int, account: str = "admin") -> str:
    stores = harness.host.store.for_account(account)
    image = digest(n)
    stores.analyses.put_analysis(image, analysis_document(3, package_count=matches))
    stores.analyses.put_matches(image, [vulnerability_match(i) for i in range(matches)], None)
    stores.catalog.put_image(
        ImageRecord(
            image_digest=image,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=(f"example.test/app:{n}",),
            distro="debian:12",
            package_count=matches,
            created_at=NOW,
            analyzed_at=NOW,
        )
    )
    return image


def test_image_summaries_count_by_severity_with_fixes_and_kev(tmp_path: Path) -> None:
    with serve_harness(tmp_path) as harness:
        image = _analyzed(harness, 1, 5)
        stores = harness.host.store.for_account("admin")
        stores.catalog.put_image(ImageRecord(image_digest=digest(2), created_at=NOW))
        answer = harness.admin.get("/v1/summaries/images")
        assert answer.status == 200
        rows = {row["imageDigest"]: row for row in answer.body}
        # vulnerability_match: odd i High, even i Low; all fixed; i == 0 in KEV.
        assert rows[image]["vulnerabilities"] == {
            "critical": 0,
            "high": 2,
            "medium": 0,
            "low": 3,
            "negligible": 0,
            "unknown": 0,
        }
        assert rows[image]["fixable"]["high"] == 2 and rows[image]["kev_count"] == 1
        assert rows[image]["fulltags"] == ["example.test/app:1"] and rows[image]["package_count"] == 5
        assert (
            rows[digest(2)]["vulnerabilities"] is None
            and rows[digest(2)]["analysis_status"] == "not_analyzed"
        )


def test_image_summaries_read_the_stored_counts_never_the_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_harness(tmp_path) as harness:
        image = _analyzed(harness, 1, 5)

        def no_decoding(self: SqliteAnalysisStore, image_digest: str) -> None:
            raise AssertionError(f"the image list decoded the matches of {image_digest}")

        monkeypatch.setattr(SqliteAnalysisStore, "get_matches", no_decoding)
        answer = harness.admin.get("/v1/summaries/images")
        assert answer.status == 200
        (row,) = answer.body
        assert row["imageDigest"] == image
        assert (row["vulnerabilities"]["high"], row["vulnerabilities"]["low"], row["kev_count"]) == (2, 3, 1)


def test_image_summaries_follow_a_rematch_and_the_active_bundle(tmp_path: Path) -> None:
    with serve_harness(tmp_path) as harness:
        image = _analyzed(harness, 1, 2)
        stores = harness.host.store.for_account("admin")
        first = {row["imageDigest"]: row for row in harness.admin.get("/v1/summaries/images").body}
        assert first[image]["vulnerabilities"]["high"] == 1
        # A rematch against a new database publishes a new pointer with the new matches.
        stores.analyses.put_matches(image, [vulnerability_match(i) for i in range(4)], NOW)
        stores.feeds.put_db_pointer(
            DbPointer(location="x", sha256="new", built_at=NOW, schema_version=1, record_count=4)
        )
        again = {row["imageDigest"]: row for row in harness.admin.get("/v1/summaries/images").body}
        assert again[image]["vulnerabilities"]["high"] == 2
        # The policy status is the newest evaluation made with the active bundle.
        document = {"id": "b1", "version": "1_0", "policies": [], "mappings": [], "whitelists": []}
        assert harness.admin.post("/v1/policies", document).status == 200
        stores.evaluations.put_evaluation(
            EvaluationRecord(
                evaluation_id="e-old",
                image_digest=image,
                repo_tag="example.test/app:1",
                bundle_id="another",
                final_action="stop",
                status="fail",
                evaluated_at=NOW + timedelta(hours=2),
            )
        )
        stores.evaluations.put_evaluation(
            EvaluationRecord(
                evaluation_id="e-b1",
                image_digest=image,
                repo_tag="example.test/app:1",
                bundle_id="b1",
                final_action="go",
                status="pass",
                evaluated_at=NOW + timedelta(hours=1),
            )
        )
        rows = {row["imageDigest"]: row for row in harness.admin.get("/v1/summaries/images").body}
        assert rows[image]["policy"]["policyId"] == "b1" and rows[image]["policy"]["status"] == "pass"


def test_vulnerability_summaries_count_images_and_list_kev(tmp_path: Path) -> None:
    with serve_harness(tmp_path) as harness:
        _analyzed(harness, 1, 3)
        _analyzed(harness, 2, 2)
        spread = harness.admin.get("/v1/summaries/vulnerabilities").body
        by_id = {item["vuln"]: item for item in spread}
        assert by_id["CVE-2026-1000"]["image_count"] == 2 and by_id["CVE-2026-1000"]["kev"] is True
        assert by_id["CVE-2026-1002"]["image_count"] == 1
        # Most severe first, then the most widespread.
        assert [item["severity"] for item in spread] == ["High", "Low", "Low"]
        assert [item["vuln"] for item in spread][1:] == ["CVE-2026-1000", "CVE-2026-1002"]
        kev = harness.admin.get("/v1/summaries/vulnerabilities?kev_only=true").body
        assert [item["vuln"] for item in kev] == ["CVE-2026-1000"]
        assert len(harness.admin.get("/v1/summaries/vulnerabilities?limit=1").body) == 1


def test_summaries_see_only_the_callers_account(tmp_path: Path) -> None:
    with serve_harness(tmp_path) as harness:
        _analyzed(harness, 1, 3)
        bob = harness.new_account("team", "bob")
        assert bob.get("/v1/summaries/images").body == []
        assert bob.get("/v1/summaries/vulnerabilities").body == []
        assert bob.get(f"/v1/images/{encoded(digest(1))}/sarif").status == 404


def test_vulnerability_rows_carry_kev_and_epss_and_sarif_is_served(tmp_path: Path) -> None:
    with serve_harness(tmp_path) as harness:
        image = _analyzed(harness, 1, 2)
        report = harness.admin.get(f"/v1/images/{encoded(image)}/vuln/all").body
        rows = {row["vuln"]: row for row in report["vulnerabilities"]}
        assert rows["CVE-2026-1000"]["kev"] is True and rows["CVE-2026-1001"]["kev"] is False
        assert rows["CVE-2026-1000"]["epss"] == 0.25 and rows["CVE-2026-1000"]["epss_percentile"] == 0.9
        sarif = harness.admin.get(f"/v1/images/{encoded(image)}/sarif")
        assert sarif.status == 200 and sarif.body["version"] == "2.1.0"
        results = sarif.body["runs"][0]["results"]
        assert {result["ruleId"] for result in results} == {"CVE-2026-1000", "CVE-2026-1001"}
        unanalyzed = harness.host.store.for_account("admin")
        unanalyzed.catalog.put_image(ImageRecord(image_digest=digest(9), created_at=NOW))
        assert harness.admin.get(f"/v1/images/{encoded(digest(9))}/sarif").status == 404


def test_the_same_digest_in_two_accounts_keeps_its_own_counts_under_concurrent_reads(tmp_path: Path) -> None:
    import threading

    with serve_harness(tmp_path) as harness:
        bob = harness.new_account("team", "bob")
        _analyzed(harness, 1, 2)  # admin: 1 high, 1 low
        _analyzed(harness, 1, 6, account="team")  # team: 3 high, 3 low (same digest)
        expected = {"admin": 1, "team": 3}
        clients = {"admin": harness.admin, "team": bob}
        failures: list[str] = []

        def read(account: str) -> None:
            for _ in range(30):
                rows = clients[account].get("/v1/summaries/images").body
                highs = [row["vulnerabilities"]["high"] for row in rows]
                if highs != [expected[account]]:
                    failures.append(f"{account} saw {highs}")

        threads = [threading.Thread(target=read, args=(name,)) for name in ("admin", "team") * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
