"""Writing a database: :class:`DbBuilder` fills a new file and publishes it by rename.

1. The new file is written next to the published one (``<name>.build-<random>``), filled from feed
   parsers and, for the sources a sync did not refresh, by copying their rows out of the previous
   database (``carry_over``). Each source is written inside a savepoint, so a source that fails
   half-way leaves nothing behind and can be carried over instead.
2. :meth:`DbBuilder.publish` commits, adds the lookup indexes, writes the build metadata, flushes the
   file to disk and renames it over the published path in one step. Until then readers keep the
   previous file; a build that fails is deleted and the previous database stays in use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.vulnerability import EpssScore, KevEntry, NvdRecord, VulnerabilityRecord
from portwarden.core.vulns.db.codecs import (
    affected_values,
    encode_json,
    nvd_values,
    plan_of_stored,
    vulnerability_values,
)
from portwarden.core.vulns.db.fingerprints import compute_fingerprints
from portwarden.core.vulns.db.reader import DamagedDatabaseError, VulnerabilityDb, integrity_problem
from portwarden.core.vulns.db.schema import (
    FEED_TABLES,
    LOOKUP_INDEX,
    PAGE_SIZE,
    SCHEMA,
    SCHEMA_VERSION,
    connect,
)
from portwarden.core.vulns.db.state import DbMetadata, SourceState
from portwarden.core.vulns.versions.range_plans import sort_key_fingerprint

logger = logging.getLogger(__name__)

# Suffix of an unfinished build next to the published file: ``<name>.build-<random>``.
BUILD_SUFFIX = ".build-"


def _now() -> datetime:
    return datetime.now(UTC)


class DbBuilder:
    """Writes one new database file; see the module documentation for the life cycle.

    Use it as a context manager: leaving the block without :meth:`publish` (an exception, an early
    return) deletes the unfinished file.
    """

    def __init__(self, target: Path, previous: Path | None = None, *, clock: Any = _now) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.temp_path = target.with_name(f"{target.name}{BUILD_SUFFIX}{secrets.token_hex(6)}")
        self._clock = clock
        self._db = connect(self.temp_path, read_only=False)
        # A failed build is thrown away, never recovered: the journal only has to serve the per-source
        # savepoints, and pages appended to a new file are not journaled at all.
        self._db.execute("PRAGMA journal_mode = MEMORY")
        self._db.execute("PRAGMA synchronous = OFF")  # the file is flushed once, before it is published
        self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self._db.executescript(SCHEMA)
        self._db.execute("BEGIN")
        self._states: dict[str, SourceState] = {}
        self._published = False
        self.previous_states: dict[str, SourceState] = {}
        # Why the previous database could not be built upon (damaged, unreadable), if it could not.
        self.previous_problem: str | None = None
        self._has_previous = False
        # The previous file's range plans were made by other key code: carried-over rows are re-planned.
        self._previous_plans_stale = False
        if previous is not None and previous.exists():
            self._attach_previous(previous)

    def __enter__(self) -> DbBuilder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def _attach_previous(self, previous: Path) -> None:
        try:
            with VulnerabilityDb.open(previous) as old:
                states = {state.key: state for state in old.metadata().sources}
                self._previous_plans_stale = not old.plans_usable
        except VulnerabilityDatabaseError as exc:
            # Unreadable, damaged or another schema version: this build starts from scratch.
            self.previous_problem = str(exc)
            logger.warning("%s; building a new database from the sources given", exc)
            return
        # Rows are copied out of the previous file: a damaged page there would fail the build half-way
        # (or, worse, copy garbage), so its pages are checked first.
        problem = integrity_problem(previous)
        if problem is not None:
            self.previous_problem = str(DamagedDatabaseError(previous, problem))
            logger.warning("%s; building a new database from the sources given", self.previous_problem)
            return
        self.previous_states = states
        # ATTACH is not allowed inside a transaction.
        self._db.execute("COMMIT")
        self._db.execute("ATTACH DATABASE ? AS previous", (f"{previous.resolve().as_uri()}?mode=ro",))
        self._db.execute("BEGIN")
        self._has_previous = True

    # -- per-source transactions

    @contextlib.contextmanager
    def source_transaction(self) -> Iterator[None]:
        """Everything written inside is kept only if the block ends normally."""
        self._db.execute("SAVEPOINT source")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO SAVEPOINT source")
            self._db.execute("RELEASE SAVEPOINT source")
            raise
        self._db.execute("RELEASE SAVEPOINT source")

    def carry_over(self, feed: str) -> int:
        """Copy the rows of ``feed`` from the previous database; returns how many vulnerability rows."""
        if not self._has_previous:
            return 0
        for table in FEED_TABLES:
            self._db.execute(
                f"INSERT OR REPLACE INTO main.{table} SELECT * FROM previous.{table} WHERE feed = ?",  # noqa: S608
                (feed,),
            )
        if self._previous_plans_stale:
            self._replan(feed)
        row = self._db.execute("SELECT count(*) FROM main.vulnerabilities WHERE feed = ?", (feed,)).fetchone()
        return int(row[0])

    def merge(self, other: Path) -> tuple[SourceState, ...]:
        """Copy every source of another build into this one: its rows and its state, as they are.

        The feed-sync workflow builds each source into a database of its own and merges them; a
        source's rows are keyed by the source, so merging sources one after another writes the same
        rows a build syncing them one after another does. Raises if ``other`` is unreadable or damaged.
        """
        with VulnerabilityDb.open(other) as source_db:
            states = source_db.metadata().sources
            stale = not source_db.plans_usable
        problem = integrity_problem(other)
        if problem is not None:
            raise DamagedDatabaseError(other, problem)
        self._db.execute("COMMIT")  # ATTACH is not allowed inside a transaction
        self._db.execute("ATTACH DATABASE ? AS merged", (f"{other.resolve().as_uri()}?mode=ro",))
        self._db.execute("BEGIN")
        try:
            for state in states:
                for table in FEED_TABLES:
                    self._db.execute(
                        f"INSERT OR REPLACE INTO main.{table} SELECT * FROM merged.{table} WHERE feed = ?",  # noqa: S608
                        (state.key,),
                    )
                if stale:
                    self._replan(state.key)
                self.set_source_state(state)
        finally:
            self._db.execute("COMMIT")
            self._db.execute("DETACH DATABASE merged")
            self._db.execute("BEGIN")
        return states

    def _replan(self, feed: str) -> None:
        plans = [
            (plan_of_stored(version_format, ranges), rowid)
            for rowid, version_format, ranges in self._db.execute(
                "SELECT rowid, version_format, ranges FROM main.affected WHERE feed = ?", (feed,)
            ).fetchall()
        ]
        self._db.executemany("UPDATE main.affected SET plan = ? WHERE rowid = ?", plans)

    def delete_records(self, feed: str, vuln_ids: Iterable[str]) -> None:
        """Remove every row of these advisories (all namespaces) from ``feed``: an update replaces them."""
        for vuln_id in vuln_ids:
            self._db.execute("DELETE FROM vulnerabilities WHERE feed = ? AND id = ?", (feed, vuln_id))
            self._db.execute("DELETE FROM affected WHERE feed = ? AND vuln_id = ?", (feed, vuln_id))

    # -- writing records

    def add_records(self, feed: str, records: Iterable[VulnerabilityRecord]) -> int:
        """Write normalized records; returns how many. A withdrawn record is stored without affected rows,
        so it is kept for the record but never matched."""
        count = 0
        vuln_rows: list[tuple[Any, ...]] = []
        affected_rows: list[tuple[Any, ...]] = []
        for record in records:
            count += 1
            vuln_rows.append(vulnerability_values(feed, record))
            if record.withdrawn is None:
                affected_rows.extend(
                    affected_values(feed, record.id, affected) for affected in record.affected
                )
            if len(vuln_rows) >= 1000:
                self._flush(vuln_rows, affected_rows)
        self._flush(vuln_rows, affected_rows)
        return count

    def _flush(self, vuln_rows: list[tuple[Any, ...]], affected_rows: list[tuple[Any, ...]]) -> None:
        if vuln_rows:
            # A record restated inside one feed (the same id twice in a zip) keeps its last statement.
            self._db.executemany(
                "INSERT OR REPLACE INTO vulnerabilities VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", vuln_rows
            )
        if affected_rows:
            self._db.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", affected_rows)
        vuln_rows.clear()
        affected_rows.clear()

    def add_nvd(self, feed: str, records: Iterable[NvdRecord]) -> int:
        """Upsert NVD records (a later statement of a CVE replaces the earlier one); drop rejected CVEs."""
        count = 0
        for record in records:
            if record.rejected:
                self._db.execute("DELETE FROM nvd WHERE cve_id = ?", (record.id,))
                continue
            count += 1
            self._db.execute("INSERT OR REPLACE INTO nvd VALUES (?,?,?,?,?,?)", nvd_values(feed, record))
        return count

    def replace_kev(self, feed: str, entries: Iterable[KevEntry]) -> int:
        self._db.execute("DELETE FROM kev WHERE feed = ?", (feed,))
        rows = [(entry.cve_id, feed, entry.model_dump_json()) for entry in entries]
        self._db.executemany("INSERT OR REPLACE INTO kev VALUES (?,?,?)", rows)
        return len(rows)

    def replace_epss(self, feed: str, scores: Iterable[EpssScore]) -> int:
        self._db.execute("DELETE FROM epss WHERE feed = ?", (feed,))
        count = 0
        batch: list[tuple[Any, ...]] = []
        for score in scores:
            batch.append(
                (
                    score.cve_id,
                    feed,
                    score.epss,
                    score.percentile,
                    score.score_date.isoformat() if score.score_date else None,
                )
            )
            if len(batch) >= 5000:
                self._db.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?,?,?)", batch)
                count += len(batch)
                batch.clear()
        self._db.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?,?,?)", batch)
        return count + len(batch)

    def feed_record_count(self, feed: str) -> int:
        """Rows this build holds for ``feed`` (vulnerability records, or NVD/KEV/EPSS entries)."""
        total = 0
        for table in ("vulnerabilities", "nvd", "kev", "epss"):
            row = self._db.execute(f"SELECT count(*) FROM main.{table} WHERE feed = ?", (feed,)).fetchone()  # noqa: S608
            total += int(row[0])
        return total

    def set_source_state(self, state: SourceState) -> None:
        self._states[state.key] = state

    # -- finishing

    def publish(self) -> DbMetadata:
        """Finish the file and atomically replace the published database with it."""
        built_at = self._clock()
        self._db.execute("DELETE FROM sources")
        self._db.executemany(
            "INSERT INTO sources VALUES (?, ?)",
            [(key, state.model_dump_json()) for key, state in sorted(self._states.items())],
        )
        self._db.execute(
            "INSERT INTO groups SELECT feed, namespace, count(*) FROM vulnerabilities"
            " GROUP BY feed, namespace"
        )
        for table in ("nvd", "kev", "epss"):
            self._db.execute(
                f"INSERT INTO groups SELECT feed, '{table}', count(*) FROM {table} GROUP BY feed"  # noqa: S608
            )
        counts = {
            table: int(self._db.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0])  # noqa: S608
            for table in FEED_TABLES
        }
        metadata = {
            "schema_version": str(SCHEMA_VERSION),
            "sort_keys": sort_key_fingerprint(),
            "built_at": built_at.isoformat(),
            "record_counts": encode_json(counts),
            # What this build changed against another one is read by comparing these (rematch).
            "namespace_fingerprints": encode_json(compute_fingerprints(self._db)),
        }
        self._db.executemany("INSERT OR REPLACE INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        self._db.execute("COMMIT")
        if self._has_previous:
            self._db.execute("DETACH DATABASE previous")
        self._db.execute(LOOKUP_INDEX)
        self._db.execute("ANALYZE")
        self._db.close()
        with open(self.temp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        self.temp_path.replace(self.target)
        fsync_directory(self.target.parent)
        self._published = True
        with VulnerabilityDb.open(self.target) as published:
            return published.metadata()

    def discard(self) -> None:
        """Drop an unfinished build (no-op once published)."""
        if self._published:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()
        self._published = True


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (not every platform lets a directory be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
