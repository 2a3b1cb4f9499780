"""The vulnerability database: one immutable SQLite file per build.

Life cycle:

1. :class:`DbBuilder` writes a new file next to the published one (``<name>.build-<random>``), filling it
   from feed parsers and, for the sources a sync did not refresh, by copying their rows out of the
   previous database (``carry_over``). Each source is written inside a savepoint, so a source that fails
   half-way leaves nothing behind and can be carried over instead.
2. :meth:`DbBuilder.publish` commits, adds the lookup indexes, writes the build metadata, flushes the
   file to disk and renames it over the published path in one step. Until then readers keep the previous
   file; a build that fails is deleted and the previous database stays in use.
3. :meth:`VulnerabilityDb.open` opens a published file read-only (``immutable``: the file never changes
   once published, which also lets several processes or Lambda invocations share it without locking).

Every location is passed in: the command line keeps the file under ``$PORTWARDEN_HOME/db/``, a Lambda
downloads the published snapshot to ``/tmp`` and opens it there.

Rows are keyed by the *feed* that produced them (``FeedSource.key``: kind and URL), so that one source
can be replaced, updated incrementally or carried over without touching the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.base import ValueObject
from portwarden.core.model.vulnerability import (
    CvssScore,
    EpssScore,
    FixState,
    KevEntry,
    NvdRecord,
    Severity,
    VulnerabilityRecord,
)
from portwarden.core.vulns.versions.range_plans import build_plan, sort_key_fingerprint

# 2: the fields a match reports (aliases, summary, description, CVSS, URLs, publication date) have their
# own columns, so reading a matched record decodes only those; 16 KiB pages.
# 3: affected rows carry a range plan (constraint text, bound validity, bound sort keys: see
# ``versions.range_plans``), and the metadata the sort-key fingerprint the plans were made with.
SCHEMA_VERSION = 3

# Tables whose rows belong to one feed; carry-over copies them feed by feed.
_FEED_TABLES = ("vulnerabilities", "affected", "nvd", "kev", "epss")

_SCHEMA = """
CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE groups (
    source_key TEXT NOT NULL, name TEXT NOT NULL, record_count INTEGER NOT NULL,
    PRIMARY KEY (source_key, name)
) WITHOUT ROWID;
CREATE TABLE vulnerabilities (
    feed TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT NOT NULL, source TEXT NOT NULL,
    severity TEXT NOT NULL, severity_source TEXT, withdrawn INTEGER NOT NULL,
    aliases TEXT NOT NULL, summary TEXT, description TEXT, cvss TEXT NOT NULL, urls TEXT NOT NULL,
    published TEXT, document TEXT NOT NULL,
    PRIMARY KEY (feed, id, namespace)
) WITHOUT ROWID;
CREATE TABLE affected (
    feed TEXT NOT NULL, vuln_id TEXT NOT NULL, namespace TEXT NOT NULL, package_name TEXT NOT NULL,
    version_format TEXT NOT NULL, fix_state TEXT NOT NULL, fix_versions TEXT NOT NULL,
    ranges TEXT NOT NULL, versions TEXT NOT NULL, severity TEXT, note TEXT, plan TEXT
);
CREATE INDEX affected_by_feed ON affected (feed, vuln_id);
CREATE TABLE nvd (
    cve_id TEXT PRIMARY KEY, feed TEXT NOT NULL, severity TEXT NOT NULL, cvss TEXT NOT NULL,
    description TEXT, last_modified TEXT
) WITHOUT ROWID;
CREATE TABLE kev (cve_id TEXT PRIMARY KEY, feed TEXT NOT NULL, document TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE epss (
    cve_id TEXT PRIMARY KEY, feed TEXT NOT NULL, epss REAL NOT NULL, percentile REAL NOT NULL,
    score_date TEXT
) WITHOUT ROWID;
"""

# Added once the rows are in: building an index over sorted data at the end is cheaper than keeping it
# up to date through every insert.
# The feed and namespace of a record are those of the query that reads it (one query per pair).
_VULNERABILITY_SELECT = (
    "SELECT id, source, severity, severity_source, aliases, summary, description, cvss, urls, published"
    " FROM vulnerabilities"
)
_AFFECTED_SELECT = (
    "SELECT feed, vuln_id, namespace, package_name, version_format, fix_state, fix_versions,"
    " ranges, versions, severity, note, plan FROM affected"
)
# Package names whose rows an opened database keeps in memory (a few MB at most).
_ROW_CACHE_NAMES = 50_000
_LOOKUP_INDEX = "CREATE INDEX affected_lookup ON affected (namespace, package_name)"


class FeedKind(StrEnum):
    """The feed formats a sync understands, as ``--source KIND=URL`` spells them."""

    OSV = "osv"
    DEBIAN = "debian"
    ALPINE = "alpine"
    NVD = "nvd"
    KEV = "kev"
    EPSS = "epss"


class SourceStatus(StrEnum):
    UPDATED = "updated"  # new data written by this build
    UNCHANGED = "unchanged"  # the server answered 304: the previous rows were carried over
    FAILED = "failed"  # the download or parse failed: the previous rows (if any) were carried over
    KEPT = "kept"  # not part of this sync: carried over as it was


class SourceState(ValueObject):
    """What the database knows about one feed source: validators, cursor, counts and the last outcome."""

    key: str
    kind: FeedKind
    url: str
    status: SourceStatus
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = Field(default=None, description="Incremental position (OSV/NVD modification time)")
    record_count: int = 0
    parse_errors: int = 0
    parse_warnings: int = 0
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None


class GroupInfo(ValueObject):
    """One group of records: a namespace of a vulnerability source, or an enrichment table."""

    name: str
    source_key: str
    kind: FeedKind
    url: str
    record_count: int
    last_sync: datetime | None = None
    last_error: str | None = None


class DbMetadata(ValueObject):
    schema_version: int
    built_at: datetime
    sources: tuple[SourceState, ...] = ()
    groups: tuple[GroupInfo, ...] = ()
    record_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def vulnerability_count(self) -> int:
        return self.record_counts.get("vulnerabilities", 0)


class AffectedRow(NamedTuple):
    """One affected package as the matcher reads it (plain tuples: this is the hot path).

    The list columns stay in their stored JSON text: most rows are only ever evaluated through a cache
    keyed by those texts, so decoding happens once per distinct text, on demand (the properties).
    """

    feed: str
    vuln_id: str
    namespace: str
    package_name: str
    version_format: str
    fix_state: str
    fix_versions_text: str
    # The stored text of ``ranges``: also a hashable identity for caching evaluations.
    ranges_text: str
    versions_text: str
    severity: str | None
    note: str | None
    # The stored range plan (``versions.range_plans``); None when a comparator of the rows is unknown.
    plan_text: str | None

    @property
    def fix_versions(self) -> tuple[str, ...]:
        return decode_strings(self.fix_versions_text)

    @property
    def ranges(self) -> tuple[tuple[str, tuple[dict[str, str], ...]], ...]:
        """Each range: (range type, events as OSV one-key mappings, ready for ``in_osv_range``)."""
        return decode_ranges(self.ranges_text)

    @property
    def versions(self) -> tuple[str, ...]:
        return decode_strings(self.versions_text)


class VulnerabilityRow(NamedTuple):
    feed: str
    id: str
    namespace: str
    source: str
    severity: Severity
    severity_source: str | None
    aliases: tuple[str, ...]
    summary: str | None
    description: str | None
    # The stored JSON of the CVSS scores: a match needs four of their fields, decoded from the text.
    cvss_text: str
    urls: tuple[str, ...]
    published: datetime | None
    # The CVE ids the record answers to (its id and aliases): the join key of NVD, KEV and EPSS.
    cve_ids: tuple[str, ...]

    @property
    def cvss(self) -> tuple[CvssScore, ...]:
        return decode_cvss(self.cvss_text)


class NvdRow(NamedTuple):
    cve_id: str
    severity: Severity
    cvss: tuple[CvssScore, ...]


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_MIN_MMAP_SIZE = 1 << 20
_PAGE_SIZE = 16384


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.execute("PRAGMA query_only = 1")
        # The file never changes once published: reading it through a memory map spares a first match
        # the copy of every page into SQLite's own cache (SQLite caps the size at its build limit).
        connection.execute(f"PRAGMA mmap_size = {max(path.stat().st_size, _MIN_MMAP_SIZE)}")
    else:
        # Opened by URI so that ATTACH accepts a URI too (the previous database, read-only).
        connection = sqlite3.connect(path.resolve().as_uri(), uri=True, isolation_level=None)
    return connection


# ---- building -----------------------------------------------------------------------------------------


class DbBuilder:
    """Writes one new database file; see the module documentation for the life cycle.

    Use it as a context manager: leaving the block without :meth:`publish` (an exception, an early
    return) deletes the unfinished file.
    """

    def __init__(self, target: Path, previous: Path | None = None, *, clock: Any = _now) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.temp_path = target.with_name(f"{target.name}.build-{secrets.token_hex(6)}")
        self._clock = clock
        self._db = _connect(self.temp_path, read_only=False)
        # A failed build is thrown away, never recovered: the journal only has to serve the per-source
        # savepoints, and pages appended to a new file are not journaled at all.
        self._db.execute("PRAGMA journal_mode = MEMORY")
        self._db.execute("PRAGMA synchronous = OFF")  # the file is flushed once, before it is published
        # Larger pages than SQLite's 4 KiB default: most advisories then fit in one page with their
        # description, and a lookup walks a shallower tree (the file is read far more than written).
        self._db.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")
        self._states: dict[str, SourceState] = {}
        self._published = False
        self.previous_states: dict[str, SourceState] = {}
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
                self.previous_states = {state.key: state for state in old.metadata().sources}
                self._previous_plans_stale = not old.plans_usable
        except VulnerabilityDatabaseError:
            # Unreadable or another schema version: this build starts from scratch.
            return
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
        for table in _FEED_TABLES:
            self._db.execute(
                f"INSERT OR REPLACE INTO main.{table} SELECT * FROM previous.{table} WHERE feed = ?",  # noqa: S608
                (feed,),
            )
        if self._previous_plans_stale:
            self._replan(feed)
        row = self._db.execute("SELECT count(*) FROM main.vulnerabilities WHERE feed = ?", (feed,)).fetchone()
        return int(row[0])

    def _replan(self, feed: str) -> None:
        plans = [
            (_plan_of_stored(version_format, ranges), rowid)
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
            # The fields a match reports get columns of their own; "document" keeps the rest (CWEs, dates).
            document = record.model_dump(
                mode="json", exclude={"affected", "id", "namespace", "source", "severity", "severity_source"}
            )
            vuln_rows.append(
                (
                    feed,
                    record.id,
                    record.namespace,
                    record.source,
                    record.severity.value,
                    record.severity_source,
                    int(record.withdrawn is not None),
                    _json(document.pop("aliases")),
                    document.pop("summary"),
                    document.pop("description"),
                    _json(document.pop("cvss")),
                    _json(document.pop("urls")),
                    document.pop("published"),
                    _json(document),
                )
            )
            if record.withdrawn is None:
                for affected in record.affected:
                    affected_rows.append(
                        (
                            feed,
                            record.id,
                            affected.namespace,
                            affected.package_name,
                            affected.version_format,
                            affected.fix_state.value,
                            _json(list(affected.fix_versions)),
                            _json(
                                [
                                    {
                                        "type": span.type.value,
                                        "events": [
                                            {event.kind.value: event.version} for event in span.events
                                        ],
                                    }
                                    for span in affected.ranges
                                ]
                            ),
                            _json(list(affected.versions)),
                            affected.severity.value if affected.severity is not None else None,
                            affected.note,
                            build_plan(
                                affected.version_format,
                                [
                                    (
                                        span.type.value,
                                        [(event.kind.value, event.version) for event in span.events],
                                    )
                                    for span in affected.ranges
                                ],
                            ),
                        )
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
            self._db.execute(
                "INSERT OR REPLACE INTO nvd VALUES (?,?,?,?,?,?)",
                (
                    record.id,
                    feed,
                    record.severity.value,
                    _json([score.model_dump(mode="json") for score in record.cvss]),
                    record.description,
                    record.last_modified.isoformat() if record.last_modified else None,
                ),
            )
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
            for table in _FEED_TABLES
        }
        metadata = {
            "schema_version": str(SCHEMA_VERSION),
            "sort_keys": sort_key_fingerprint(),
            "built_at": built_at.isoformat(),
            "record_counts": _json(counts),
        }
        self._db.executemany("INSERT OR REPLACE INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        self._db.execute("COMMIT")
        if self._has_previous:
            self._db.execute("DETACH DATABASE previous")
        self._db.execute(_LOOKUP_INDEX)
        self._db.execute("ANALYZE")
        self._db.close()
        with open(self.temp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        self.temp_path.replace(self.target)
        _fsync_directory(self.target.parent)
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


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- reading ------------------------------------------------------------------------------------------


class VulnerabilityDb:
    """A published database, opened read-only. Queries are what the matcher and ``feeds list`` need."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._metadata: DbMetadata | None = None
        self._vulnerability = lru_cache(maxsize=65536)(self._load_vulnerability)
        self._records: dict[tuple[str, str, str], VulnerabilityRow] = {}
        self._rows_by_name: dict[tuple[str, str], tuple[AffectedRow, ...]] = {}
        row = connection.execute("SELECT value FROM metadata WHERE key = 'sort_keys'").fetchone()
        # Range plans hold sort keys: only keys made by the same key code as this process's are usable.
        self.plans_usable = row is not None and row[0] == sort_key_fingerprint()

    @classmethod
    def open(cls, path: Path) -> VulnerabilityDb:
        """Open ``path`` read-only; VulnerabilityDatabaseError if missing, unreadable or of another schema."""
        if not path.is_file():
            raise VulnerabilityDatabaseError(f"no vulnerability database at {path}")
        try:
            connection = _connect(path, read_only=True)
            row = connection.execute("SELECT value FROM metadata WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error as exc:
            raise VulnerabilityDatabaseError(
                f"{path} is not a readable vulnerability database: {exc}"
            ) from exc
        if row is None or row[0] != str(SCHEMA_VERSION):
            connection.close()
            found = row[0] if row else "none"
            raise VulnerabilityDatabaseError(
                f"{path} has schema version {found}, this version of Portwarden reads {SCHEMA_VERSION}"
            )
        return cls(path, connection)

    def __enter__(self) -> VulnerabilityDb:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def metadata(self) -> DbMetadata:
        if self._metadata is None:
            values = dict(self._db.execute("SELECT key, value FROM metadata").fetchall())
            states = tuple(
                SourceState.model_validate_json(state)
                for (state,) in self._db.execute("SELECT state FROM sources ORDER BY key")
            )
            by_key = {state.key: state for state in states}
            groups: list[GroupInfo] = []
            for source_key, name, record_count in self._db.execute(
                "SELECT source_key, name, record_count FROM groups ORDER BY source_key, name"
            ):
                state = by_key.get(source_key)
                if state is None:
                    continue
                groups.append(
                    GroupInfo(
                        name=name,
                        source_key=source_key,
                        kind=state.kind,
                        url=state.url,
                        record_count=record_count,
                        last_sync=state.last_success,
                        last_error=state.last_error,
                    )
                )
            # A source with no rows (a first sync that failed) still shows up, with its error.
            grouped = {group.source_key for group in groups}
            groups.extend(
                GroupInfo(
                    name=state.kind.value,
                    source_key=state.key,
                    kind=state.kind,
                    url=state.url,
                    record_count=0,
                    last_sync=state.last_success,
                    last_error=state.last_error,
                )
                for state in states
                if state.key not in grouped
            )
            self._metadata = DbMetadata(
                schema_version=int(values["schema_version"]),
                built_at=datetime.fromisoformat(values["built_at"]),
                sources=states,
                groups=tuple(groups),
                record_counts=json.loads(values.get("record_counts", "{}")),
            )
        return self._metadata

    def affected(self, namespace: str, package_names: Sequence[str]) -> list[AffectedRow]:
        """Affected rows of the given packages in ``namespace`` (names already normalized)."""
        by_name = self.affected_by_name(namespace, package_names)
        return [row for name in dict.fromkeys(package_names) for row in by_name.get(name, ())]

    def affected_by_name(
        self, namespace: str, package_names: Sequence[str]
    ) -> dict[str, tuple[AffectedRow, ...]]:
        """Affected rows of the given packages in ``namespace``, by name; names without rows are left out.

        Rows are cached per package name (the file never changes): images share most of their packages,
        so a process that matches many images (a warm Lambda, a rematch) reads each name once.
        """
        found: dict[str, tuple[AffectedRow, ...]] = {}
        missing: list[str] = []
        cache = self._rows_by_name
        for name in package_names:
            cached = cache.get((namespace, name))
            if cached is None:
                missing.append(name)
            elif cached:
                found[name] = cached
        if not missing:
            return found
        if len(cache) > _ROW_CACHE_NAMES:
            cache.clear()
        missing = list(dict.fromkeys(missing))
        read: dict[str, list[AffectedRow]] = {}
        make_row = AffectedRow._make
        # Stay well below SQLite's limit on bound parameters.
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            # Only "?" placeholders are interpolated into the statement.
            query = _AFFECTED_SELECT + f" WHERE namespace = ? AND package_name IN ({placeholders})"
            for row in self._db.execute(query, (namespace, *chunk)):
                name_rows = read.get(row[3])
                if name_rows is None:
                    read[row[3]] = [make_row(row)]
                else:
                    name_rows.append(make_row(row))
        for name in missing:
            name_rows = read.get(name)
            rows = tuple(name_rows) if name_rows else ()
            cache[(namespace, name)] = rows
            if rows:
                found[name] = rows
        return found

    def vulnerability(self, feed: str, vuln_id: str, namespace: str) -> VulnerabilityRow | None:
        return self._vulnerability(feed, vuln_id, namespace)

    def vulnerabilities(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], VulnerabilityRow]:
        """Records by (feed, id, namespace), read in batches; cached like :meth:`vulnerability`."""
        found: dict[tuple[str, str, str], VulnerabilityRow] = {}
        missing: list[tuple[str, str, str]] = []
        for key in dict.fromkeys(keys):
            cached = self._records.get(key)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        # The primary key is (feed, id, namespace): one query per (feed, namespace) reads exactly the
        # wanted rows through it (a row-value IN list would scan the table).
        ids_by_group: dict[tuple[str, str], list[str]] = {}
        for feed, vuln_id, namespace in missing:
            ids_by_group.setdefault((feed, namespace), []).append(vuln_id)
        records = self._records
        for (feed, namespace), ids in ids_by_group.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                placeholders = ",".join("?" * len(chunk))
                # Only "?" placeholders are interpolated into the statement.
                query = (
                    _VULNERABILITY_SELECT + f" WHERE feed = ? AND id IN ({placeholders}) AND namespace = ?"
                )
                for row in self._db.execute(query, (feed, *chunk, namespace)):
                    key = (feed, row[0], namespace)
                    found[key] = records[key] = _vulnerability_row(feed, namespace, row)
        return found

    def _load_vulnerability(self, feed: str, vuln_id: str, namespace: str) -> VulnerabilityRow | None:
        return self.vulnerabilities([(feed, vuln_id, namespace)]).get((feed, vuln_id, namespace))

    def nvd(self, cve_ids: Sequence[str]) -> dict[str, NvdRow]:
        return {
            cve_id: NvdRow(
                cve_id=cve_id,
                severity=Severity(severity),
                cvss=tuple(CvssScore.model_validate(score) for score in _decode_json(cvss)[0]),
            )
            for cve_id, severity, cvss in self._select_by_cve(
                "SELECT cve_id, severity, cvss FROM nvd", cve_ids
            )
        }

    def kev(self, cve_ids: Sequence[str]) -> set[str]:
        return {row[0] for row in self._select_by_cve("SELECT cve_id FROM kev", cve_ids)}

    def kev_entries(self, cve_ids: Sequence[str]) -> dict[str, KevEntry]:
        return {
            row[0]: KevEntry.model_validate_json(row[1])
            for row in self._select_by_cve("SELECT cve_id, document FROM kev", cve_ids)
        }

    def epss(self, cve_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        return {
            row[0]: (float(row[1]), float(row[2]))
            for row in self._select_by_cve("SELECT cve_id, epss, percentile FROM epss", cve_ids)
        }

    def _select_by_cve(self, select: str, cve_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        ids = list(dict.fromkeys(cve_ids))
        results: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            results.extend(self._db.execute(f"{select} WHERE cve_id IN ({placeholders})", chunk).fetchall())
        return results

    def records(self, vuln_id: str) -> list[VulnerabilityRow]:
        """Every stored statement of ``vuln_id`` (all feeds and namespaces)."""
        keys = self._db.execute(
            "SELECT feed, namespace FROM vulnerabilities WHERE id = ? ORDER BY feed, namespace", (vuln_id,)
        ).fetchall()
        return [row for feed, namespace in keys if (row := self.vulnerability(feed, vuln_id, namespace))]


# ``json.loads`` spends more time around the C scanner than in it on the small texts of a row (it checks
# for surrounding whitespace, which the database never writes): the decoder's own entry point skips that.
_decode_json = json.JSONDecoder().raw_decode


def _vulnerability_row(feed: str, namespace: str, row: tuple[Any, ...]) -> VulnerabilityRow:
    vuln_id, source, severity, severity_source, aliases_text, summary, description, cvss_text, urls_text = (
        row[:9]
    )
    published = row[9]
    # Empty lists are the common case: no decoding at all for them.
    aliases: tuple[str, ...] = tuple(_decode_json(aliases_text)[0]) if aliases_text != "[]" else ()
    if aliases:
        cve_ids = tuple(dict.fromkeys(name for name in (vuln_id, *aliases) if name.startswith("CVE-")))
    else:
        cve_ids = (vuln_id,) if vuln_id.startswith("CVE-") else ()
    # Positional: this runs once per matched record, and keyword construction costs twice as much.
    return VulnerabilityRow(
        feed,
        vuln_id,
        namespace,
        source,
        _SEVERITIES.get(severity) or Severity(severity),
        severity_source,
        aliases,
        summary,
        description,
        cvss_text,
        tuple(_decode_json(urls_text)[0]) if urls_text != "[]" else (),
        datetime.fromisoformat(published) if published else None,
        cve_ids,
    )


_SEVERITIES = {severity.value: severity for severity in Severity}


@lru_cache(maxsize=16384)
def decode_cvss(text: str) -> tuple[CvssScore, ...]:
    if text == "[]":
        return ()
    return tuple(CvssScore.model_validate(score) for score in _decode_json(text)[0])


@lru_cache(maxsize=16384)
def decode_cvss_fields(text: str) -> tuple[tuple[str, str, float | None, str | None], ...]:
    """(version, vector, base score, source) of each stored score: what a match reports of them.

    The text is the database's own dump of validated scores, so the fields already have their types
    (the score is made a float all the same, as validation would).
    """
    if text == "[]":
        return ()
    return tuple(
        (
            score["version"],
            score["vector"],
            None if score.get("base_score") is None else float(score["base_score"]),
            score.get("source"),
        )
        for score in _decode_json(text)[0]
    )


def _plan_of_stored(version_format: str, ranges_text: str) -> str | None:
    return build_plan(
        version_format,
        [
            (range_type, [(kind, bound) for event in events for kind, bound in event.items()])
            for range_type, events in decode_ranges(ranges_text)
        ],
    )


@lru_cache(maxsize=65536)
def decode_strings(text: str) -> tuple[str, ...]:
    return tuple(_decode_json(text)[0])


@lru_cache(maxsize=65536)
def decode_ranges(text: str) -> tuple[tuple[str, tuple[dict[str, str], ...]], ...]:
    # Many packages share identical range documents ("introduced 0, fixed X"): decode each text once.
    return tuple((span["type"], tuple(span["events"])) for span in _decode_json(text)[0])


FIX_STATES = {state.value: state for state in FixState}
