"""The feeds of ``portwarden serve``: a sync from a mirrored feed, the listing, disabled groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.errors import NotFoundError
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.services.sync_feeds import FeedSource
from portwarden.core.vulns.db import FeedKind
from portwarden.serve.feeds import LocalFeeds
from tests.conftest import FIXTURES_DIR

pytestmark = pytest.mark.integration

ALPINE_FEED = FIXTURES_DIR / "feeds-sample" / "alpine" / "secdb-json-derived" / "v3.11" / "main.json"
ASPELL = Package(
    name="aspell",
    version="0.60.7-r0",
    type=PackageType.APK,
    locations=(Location(path="/lib/apk/db/installed"),),
    found_by="apk",
    metadata={"source_name": "aspell", "source_version": "0.60.7-r0"},
)
ALPINE = Distro(id="alpine", version_id="3.11.6")


def test_sync_lists_groups_and_a_disabled_group_matches_nothing(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "home") as store:
        feeds = LocalFeeds(
            tmp_path / "home" / "db" / "vulnerability.db",
            lambda: HttpFeedFetcher(tmp_path / "work"),
            lambda: [FeedSource(kind=FeedKind.ALPINE, url=ALPINE_FEED.as_uri())],
            store.events,
        )
        assert feeds.open_database() is None  # before the first sync: nothing to match with

        [result] = feeds.sync()

        assert result["status"] == "success" and result["groups"][0]["updated_record_count"] > 0
        [feed] = feeds.list_feeds()
        groups = {group["name"]: group for group in feed["groups"]}
        assert groups["alpine:3.11"]["record_count"] > 0 and groups["alpine:3.11"]["enabled"] is True
        opened = feeds.open_database()
        assert opened is not None
        assert "CVE-2019-17544" in {m.id for m in opened.matcher.match([ASPELL], ALPINE)}
        assert [e.type for e in store.events.list_events()] == ["system.feeds.sync.completed"]

        disabled = feeds.set_enabled("vulnerabilities", "alpine:3.11", False)
        assert disabled["enabled"] is False
        assert feeds.open_database().matcher.match([ASPELL], ALPINE) == []  # type: ignore[union-attr]
        feeds.set_enabled("vulnerabilities", "alpine:3.11", True)
        assert feeds.open_database().matcher.match([ASPELL], ALPINE) != []  # type: ignore[union-attr]
        with pytest.raises(NotFoundError):
            feeds.set_enabled("nvdv2", None, False)

        # Deleting the feed drops the database and disables it: the next sync does nothing
        feeds.delete("vulnerabilities", None)
        assert feeds.open_database() is None
        assert feeds.sync()[0]["groups"] == []
