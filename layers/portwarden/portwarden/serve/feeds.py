"""The vulnerability feeds of ``portwarden serve``: Anchore's ``/system/feeds`` over the local database.

One feed, ``vulnerabilities``, whose groups are the database's namespaces (``debian:12``, ``npm``…).
A sync runs the same ``sync_feeds`` as ``portwarden feeds sync`` and publishes a new database file;
analyses and matches opened afterwards use it. One sync runs at a time; a second request while one
runs is refused (409) rather than queued, as on Anchore.

Disabled feeds and groups are remembered in ``feeds-state.json`` beside the database: a disabled
feed is not synced, and a disabled group's records match nothing (they stay in the database, so
enabling the group again needs no sync).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portwarden.core.errors import ConflictError, NotFoundError, PortwardenError
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match
from portwarden.core.model.package import Package
from portwarden.core.model.records import DbPointer
from portwarden.core.ports import EventStore, FeedFetcher
from portwarden.core.services.events import record_event
from portwarden.core.services.phases import OpenDatabase
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import DbMetadata, SourceStatus, VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher

logger = logging.getLogger(__name__)

FEED_NAME = "vulnerabilities"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class GroupFilteringMatcher(Matcher):
    """The matcher, without the matches of feed groups the admin disabled (read at each match, so a
    group disabled while the server runs applies to the next analysis)."""

    def __init__(self, db: VulnerabilityDb, disabled_groups: Callable[[], set[str]]) -> None:
        super().__init__(db)
        self._disabled_groups = disabled_groups

    def match(self, packages: Sequence[Package], distro: Distro | None) -> list[Match]:
        disabled = self._disabled_groups()
        found = super().match(packages, distro)
        return [match for match in found if match.namespace not in disabled] if disabled else found


class LocalFeeds:
    def __init__(
        self,
        database: Path,
        fetcher: Callable[[], FeedFetcher],
        sources: Callable[[], Sequence[FeedSource]],
        events: EventStore,
    ) -> None:
        self._database = database
        self._fetcher = fetcher
        self._sources = sources
        self._events = events
        self._state_file = database.parent / "feeds-state.json"
        self._sync_lock = threading.Lock()
        self._local = threading.local()

    @property
    def database(self) -> Path:
        return self._database

    # ---- the database for matching ----------------------------------------------------------------

    def open_database(self) -> OpenDatabase | None:
        """The current database for this thread (reopened when a sync published a new file)."""
        try:
            stamp = self._database.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        cached: tuple[int, OpenDatabase, VulnerabilityDb] | None = getattr(self._local, "open", None)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        db = VulnerabilityDb.open(self._database)
        metadata = db.metadata()
        opened = OpenDatabase(
            matcher=GroupFilteringMatcher(db, self.disabled_groups),
            pointer=DbPointer(
                location=str(self._database),
                sha256="",
                built_at=metadata.built_at,
                schema_version=metadata.schema_version,
                record_count=metadata.vulnerability_count,
            ),
        )
        if cached is not None:
            cached[2].close()
        self._local.open = (stamp, opened, db)
        return opened

    # ---- the FeedService port -------------------------------------------------------------------------

    def disabled_groups(self) -> set[str]:
        return set(self._state().get("disabled_groups", []))

    def _state(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {"disabled_feeds": [], "disabled_groups": []}
        return loaded if isinstance(loaded, dict) else {"disabled_feeds": [], "disabled_groups": []}

    def _save_state(self, state: dict[str, Any]) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, sort_keys=True))
        temporary.replace(self._state_file)

    def _metadata(self) -> DbMetadata | None:
        if not self._database.exists():
            return None
        with VulnerabilityDb.open(self._database) as db:
            return db.metadata()

    def _feed(self, metadata: DbMetadata | None, state: dict[str, Any]) -> dict[str, Any]:
        disabled_groups = set(state.get("disabled_groups", []))
        groups = []
        for group in metadata.groups if metadata else ():
            groups.append(
                {
                    "name": group.name,
                    "created_at": _iso(group.last_sync),
                    "last_sync": _iso(group.last_sync),
                    "record_count": group.record_count,
                    "enabled": group.name not in disabled_groups,
                }
            )
        built = _iso(metadata.built_at) if metadata else None
        return {
            "name": FEED_NAME,
            "created_at": built,
            "updated_at": built,
            "last_full_sync": built,
            "enabled": FEED_NAME not in state.get("disabled_feeds", []),
            "groups": groups,
        }

    def list_feeds(self) -> list[dict[str, Any]]:
        return [self._feed(self._metadata(), self._state())]

    def sync(self, *, flush: bool = False) -> list[dict[str, Any]]:
        if not self._sync_lock.acquire(blocking=False):
            raise ConflictError("a feed sync is already running")
        try:
            return [self._sync(flush)]
        finally:
            self._sync_lock.release()

    def _sync(self, flush: bool) -> dict[str, Any]:
        started = time.perf_counter()
        if FEED_NAME in self._state().get("disabled_feeds", []):
            return {"feed": FEED_NAME, "status": "success", "total_time_seconds": 0.0, "groups": []}
        if flush and self._database.exists():
            self._database.unlink()
        try:
            result = sync_feeds(list(self._sources()), self._fetcher(), self._database)
        except PortwardenError as exc:
            record_event(
                self._events,
                "system.feeds.sync.failed",
                message=str(exc),
                level="ERROR",
                resource_type="feeds",
            )
            raise
        elapsed = time.perf_counter() - started
        failed = bool(result.failed)
        record_event(
            self._events,
            "system.feeds.sync.failed" if failed else "system.feeds.sync.completed",
            message=f"{len(result.outcomes)} sources, {len(result.failed)} failed, "
            f"{result.metadata.vulnerability_count} vulnerability records",
            level="ERROR" if failed else "INFO",
            resource_type="feeds",
            resource_id=FEED_NAME,
        )
        return {
            "feed": FEED_NAME,
            "status": "failure" if failed else "success",
            "total_time_seconds": round(elapsed, 3),
            "groups": [
                {
                    "group": outcome.source.key,
                    "status": "failure" if outcome.status is SourceStatus.FAILED else "success",
                    "updated_image_count": 0,
                    "updated_record_count": outcome.record_count,
                    "total_time_seconds": round(elapsed, 3),
                }
                for outcome in result.outcomes
            ],
        }

    def set_enabled(self, feed: str, group: str | None, enabled: bool) -> dict[str, Any]:
        if feed != FEED_NAME:
            raise NotFoundError(f"no feed {feed}")
        state = self._state()
        key, name = ("disabled_groups", group) if group is not None else ("disabled_feeds", feed)
        names = set(state.get(key, []))
        if enabled:
            names.discard(name)
        else:
            names.add(name)
        state[key] = sorted(names)
        self._save_state(state)
        listed = self._feed(self._metadata(), state)
        if group is None:
            return listed
        for entry in listed["groups"]:
            if entry["name"] == group:
                return dict(entry)
        raise NotFoundError(f"no group {group} in feed {feed}")

    def delete(self, feed: str, group: str | None) -> dict[str, Any]:
        if feed != FEED_NAME:
            raise NotFoundError(f"no feed {feed}")
        if group is not None:
            # Groups share one database file: deleting one disables it (its rows go at the next sync).
            return self.set_enabled(feed, group, False)
        with self._sync_lock:
            if self._database.exists():
                self._database.unlink()
        return self.set_enabled(feed, None, False)
