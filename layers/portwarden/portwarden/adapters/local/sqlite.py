"""Every store port on one SQLite file (``$PORTWARDEN_HOME/portwarden.db``), plus filesystem blobs.

Choices, and why:

* One database file in WAL mode: readers never block the writer, and a copy of one file is a backup.
* Analysis documents and match lists are zstd-compressed JSON **inside** SQLite (BLOB columns), not
  files beside it: they are written in the same transaction as their row, a crash cannot leave a row
  pointing at a missing file, and even a 20,000-file analysis compresses to a few hundred KB.
  Layer fragments (a cache that may be deleted at any time) live in ``.blobs``, a FilesystemBlobStore
  under ``$PORTWARDEN_HOME/cache``.
* A connection per thread (SQLite connections must not be shared across threads mid-statement), in
  autocommit mode with explicit ``BEGIN IMMEDIATE`` where several statements must be atomic; the
  busy timeout makes concurrent writers wait instead of failing.
* Schema changes are numbered migrations recorded in ``schema_version``; opening a database applies the
  missing ones, and a database written by a newer Portwarden is refused rather than misread.
* Timestamps are stored as fixed-width UTC ISO strings so that ``ORDER BY`` on text is time order.
  Naive datetimes are taken as UTC; every datetime read back is timezone-aware (UTC).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.records import (
    REPO_TAGS_KEPT,
    AnalysisClaim,
    AnalysisStatus,
    AnalyzedSummary,
    DbPointer,
    EvaluationRecord,
    EventRecord,
    ImageRecord,
    StoredBundle,
    TagRecord,
)

DATABASE_FILE = "portwarden.db"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ZSTD_LEVEL = 3

# Each migration is a list of statements applied in one transaction; append, never edit.
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE images (
                image_digest TEXT PRIMARY KEY,
                image_id TEXT,
                analysis_status TEXT NOT NULL,
                repo_tags TEXT NOT NULL,
                source TEXT,
                platform TEXT,
                distro TEXT,
                package_count INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                analyzed_at TEXT,
                last_error TEXT
            )""",
            "CREATE INDEX images_by_created ON images (created_at, image_digest)",
            "CREATE INDEX images_by_status ON images (analysis_status, created_at, image_digest)",
            """CREATE TABLE tags (
                repo_tag TEXT PRIMARY KEY,
                image_digest TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE analyses (
                image_digest TEXT PRIMARY KEY,
                document BLOB NOT NULL,
                stored_at TEXT NOT NULL
            )""",
            """CREATE TABLE matches (
                image_digest TEXT PRIMARY KEY,
                db_built_at TEXT,
                document BLOB NOT NULL,
                stored_at TEXT NOT NULL
            )""",
            """CREATE TABLE evaluations (
                evaluation_id TEXT PRIMARY KEY,
                image_digest TEXT NOT NULL,
                repo_tag TEXT,
                evaluated_at TEXT NOT NULL,
                record BLOB NOT NULL
            )""",
            "CREATE INDEX evaluations_by_image ON evaluations (image_digest, evaluated_at, evaluation_id)",
            """CREATE TABLE bundles (
                bundle_id TEXT PRIMARY KEY,
                record BLOB NOT NULL
            )""",
            # One row at most: the active bundle is a pointer, so "exactly one active" holds by construction.
            """CREATE TABLE active_bundle (
                singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                bundle_id TEXT NOT NULL REFERENCES bundles (bundle_id) ON DELETE CASCADE
            )""",
            """CREATE TABLE events (
                event_id TEXT PRIMARY KEY,
                timestamp TEXT NOT NULL,
                record TEXT NOT NULL
            )""",
            "CREATE INDEX events_by_time ON events (timestamp, event_id)",
            """CREATE TABLE db_pointer (
                singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                record TEXT NOT NULL
            )""",
        ),
    ),
    (
        2,
        (
            # Analysis claims: who analyzes the image and until when (a stale claim can be taken over).
            "ALTER TABLE images ADD COLUMN claim_owner TEXT",
            "ALTER TABLE images ADD COLUMN claim_deadline TEXT",
        ),
    ),
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]


def to_timestamp(value: datetime) -> str:
    """Fixed-width UTC text that sorts in time order (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def from_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def _compress(model: ValueObject) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(model.model_dump_json().encode())


def _decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data)


def _now() -> str:
    return to_timestamp(datetime.now(UTC))


class _StoredMatches(ValueObject):
    db_built_at: datetime | None = None
    matches: tuple[Match, ...] = ()


class _Database:
    """Per-thread connections to one SQLite file, migrations on open, errors as StoreError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc}") from exc
        with self.errors("open the database"):
            self._migrate(self.connection())

    def connection(self) -> sqlite3.Connection:
        existing: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if existing is not None:
            return existing
        with self._lock:
            if self._closed:
                raise StoreError(f"the store at {self.path} is closed")
            # check_same_thread=False only so that close() may close every thread's connection;
            # each connection is otherwise used by the thread that opened it.
            created = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._connections.append(created)
        created.execute("PRAGMA journal_mode=WAL")
        created.execute("PRAGMA synchronous=NORMAL")
        created.execute("PRAGMA foreign_keys=ON")
        self._local.connection = created
        return created

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {action} ({self.path}): {exc}") from exc

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: takes the write lock up front, so read-then-write is atomic."""
        with self.errors(action):
            connection = self.connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _migrate(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this Portwarden "
                    f"understands ({SCHEMA_VERSION}); upgrade Portwarden"
                )
            for version, statements in _MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now())
                )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def schema_version(self) -> int:
        with self.errors("read the schema version"):
            row = self.connection().execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()


# ---- images and tags ----------------------------------------------------------------------------


# Literal statements (no string building): every value is a bound parameter.
_INSERT_IMAGE = (
    "INSERT {conflict} INTO images (image_digest, image_id, analysis_status, repo_tags, source, platform, "
    "distro, package_count, created_at, analyzed_at, last_error, claim_owner, claim_deadline) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REPLACE_IMAGE = _INSERT_IMAGE.replace("{conflict}", "OR REPLACE")
_ADD_IMAGE = _INSERT_IMAGE.replace("{conflict}", "OR IGNORE")
_SELECT_IMAGES = (
    "SELECT image_digest, image_id, analysis_status, repo_tags, source, platform, distro, package_count, "
    "created_at, analyzed_at, last_error, claim_owner, claim_deadline FROM images"
)


def _image_row(image: ImageRecord) -> tuple[Any, ...]:
    return (
        image.image_digest,
        image.image_id,
        image.analysis_status.value,
        json.dumps(list(image.repo_tags)),
        image.source,
        image.platform,
        image.distro,
        image.package_count,
        to_timestamp(image.created_at),
        to_timestamp(image.analyzed_at) if image.analyzed_at is not None else None,
        image.last_error,
        image.claim_owner,
        to_timestamp(image.claim_deadline) if image.claim_deadline is not None else None,
    )


def _image_from_row(row: sqlite3.Row | tuple[Any, ...]) -> ImageRecord:
    return ImageRecord(
        image_digest=row[0],
        image_id=row[1],
        analysis_status=AnalysisStatus(row[2]),
        repo_tags=tuple(json.loads(row[3])),
        source=row[4],
        platform=row[5],
        distro=row[6],
        package_count=row[7],
        created_at=from_timestamp(row[8]),
        analyzed_at=from_timestamp(row[9]) if row[9] is not None else None,
        last_error=row[10],
        claim_owner=row[11],
        claim_deadline=from_timestamp(row[12]) if row[12] is not None else None,
    )


class SqliteCatalogStore:
    """Images by manifest digest, and tags. Listings are newest first (created_at, then digest)."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    def put_image(self, image: ImageRecord) -> None:
        with self._db.errors("store an image"):
            self._db.connection().execute(
                _REPLACE_IMAGE,
                _image_row(image),
            )

    def add_image(self, image: ImageRecord) -> bool:
        """Insert ``image`` only if its digest is unknown; False (and nothing written) otherwise."""
        with self._db.errors("add an image"):
            cursor = self._db.connection().execute(
                _ADD_IMAGE,
                _image_row(image),
            )
        return cursor.rowcount == 1

    def get_image(self, image_digest: str) -> ImageRecord | None:
        with self._db.errors("read an image"):
            row = (
                self._db.connection()
                .execute(_SELECT_IMAGES + " WHERE image_digest = ?", (image_digest,))
                .fetchone()
            )
        return _image_from_row(row) if row is not None else None

    def list_images(self, limit: int = 1000) -> list[ImageRecord]:
        with self._db.errors("list images"):
            rows = (
                self._db.connection()
                .execute(
                    _SELECT_IMAGES + " ORDER BY created_at DESC, image_digest DESC LIMIT ?",
                    (max(limit, 0),),
                )
                .fetchall()
            )
        return [_image_from_row(row) for row in rows]

    def list_images_by_status(self, status: AnalysisStatus, limit: int = 1000) -> list[ImageRecord]:
        """Images in one analysis status, newest first (e.g. every analyzed image for a rematch)."""
        with self._db.errors("list images by status"):
            rows = (
                self._db.connection()
                .execute(
                    _SELECT_IMAGES + " WHERE analysis_status = ? "
                    "ORDER BY created_at DESC, image_digest DESC LIMIT ?",
                    (status.value, max(limit, 0)),
                )
                .fetchall()
            )
        return [_image_from_row(row) for row in rows]

    def add_repo_tag(self, image_digest: str, repo_tag: str) -> None:
        """Read-modify-write of the tag list inside one write transaction: atomic against other writers.
        Tags stay in the order they were added; past ``REPO_TAGS_KEPT`` the oldest is dropped."""
        with self._db.transaction("add a tag to an image") as connection:
            row = connection.execute(
                "SELECT repo_tags FROM images WHERE image_digest = ?", (image_digest,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no image {image_digest}")
            tags: list[str] = json.loads(row[0])
            if repo_tag not in tags:
                connection.execute(
                    "UPDATE images SET repo_tags = ? WHERE image_digest = ?",
                    (json.dumps([*tags, repo_tag][-REPO_TAGS_KEPT:]), image_digest),
                )

    def set_status(
        self,
        image_digest: str,
        status: AnalysisStatus,
        *,
        error: str | None = None,
        expected: AnalysisStatus | None = None,
    ) -> bool:
        """One UPDATE with the expected status in its WHERE clause: SQLite applies it atomically, so
        of two concurrent callers expecting the same status exactly one sees a changed row.
        ``last_error`` is set to ``error`` (cleared when None). NotFoundError for an unknown digest."""
        with self._db.transaction("update an image's status") as connection:
            if expected is None:
                cursor = connection.execute(
                    "UPDATE images SET analysis_status = ?, last_error = ? WHERE image_digest = ?",
                    (status.value, error, image_digest),
                )
            else:
                cursor = connection.execute(
                    "UPDATE images SET analysis_status = ?, last_error = ? "
                    "WHERE image_digest = ? AND analysis_status = ?",
                    (status.value, error, image_digest, expected.value),
                )
            if cursor.rowcount == 1:
                return True
            exists = connection.execute(
                "SELECT 1 FROM images WHERE image_digest = ?", (image_digest,)
            ).fetchone()
        if exists is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def claim_analysis(
        self, image_digest: str, claim: AnalysisClaim, *, now: datetime, force: bool = False
    ) -> bool:
        """One conditional UPDATE (see the port): of two callers racing for a claim, one wins."""
        with self._db.transaction("claim an image's analysis") as connection:
            cursor = connection.execute(
                "UPDATE images SET analysis_status = 'analyzing', last_error = NULL, claim_owner = ?, "
                "claim_deadline = ? WHERE image_digest = ? AND ("
                "analysis_status IN ('not_analyzed', 'analysis_failed') "
                "OR (? AND analysis_status = 'analyzed') "
                "OR (analysis_status = 'analyzing' AND (claim_deadline IS NULL OR claim_deadline < ?)))",
                (claim.owner, to_timestamp(claim.deadline), image_digest, int(force), to_timestamp(now)),
            )
            if cursor.rowcount == 1:
                return True
            exists = connection.execute(
                "SELECT 1 FROM images WHERE image_digest = ?", (image_digest,)
            ).fetchone()
        if exists is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def release_claim(self, image_digest: str, owner: str | None, error: str) -> bool:
        with self._db.transaction("release an analysis claim") as connection:
            cursor = connection.execute(
                "UPDATE images SET analysis_status = 'analysis_failed', last_error = ?, claim_owner = NULL, "
                "claim_deadline = NULL WHERE image_digest = ? AND analysis_status = 'analyzing' "
                "AND claim_owner IS ?",
                (error, image_digest, owner),
            )
        return cursor.rowcount == 1

    def mark_analyzed(self, image_digest: str, summary: AnalyzedSummary) -> None:
        with self._db.transaction("record an analyzed image") as connection:
            cursor = connection.execute(
                "UPDATE images SET analysis_status = 'analyzed', analyzed_at = ?, package_count = ?, "
                "distro = ?, last_error = NULL, claim_owner = NULL, claim_deadline = NULL "
                "WHERE image_digest = ?",
                (to_timestamp(summary.analyzed_at), summary.package_count, summary.distro, image_digest),
            )
        if cursor.rowcount != 1:
            raise NotFoundError(f"no image {image_digest}")

    def put_tag(self, tag: TagRecord) -> None:
        with self._db.errors("store a tag"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO tags (repo_tag, image_digest, updated_at) VALUES (?, ?, ?)",
                (tag.repo_tag, tag.image_digest, to_timestamp(tag.updated_at)),
            )

    def get_tag(self, repo_tag: str) -> TagRecord | None:
        with self._db.errors("read a tag"):
            row = (
                self._db.connection()
                .execute(
                    "SELECT repo_tag, image_digest, updated_at FROM tags WHERE repo_tag = ?", (repo_tag,)
                )
                .fetchone()
            )
        if row is None:
            return None
        return TagRecord(repo_tag=row[0], image_digest=row[1], updated_at=from_timestamp(row[2]))

    def list_tags(self) -> list[TagRecord]:
        """Every tag, sorted by name."""
        with self._db.errors("list tags"):
            rows = (
                self._db.connection()
                .execute("SELECT repo_tag, image_digest, updated_at FROM tags ORDER BY repo_tag")
                .fetchall()
            )
        return [TagRecord(repo_tag=r[0], image_digest=r[1], updated_at=from_timestamp(r[2])) for r in rows]


# ---- analyses and matches ------------------------------------------------------------------------


class SqliteAnalysisStore:
    def __init__(self, db: _Database) -> None:
        self._db = db

    def put_analysis(self, image_digest: str, analysis: ImageAnalysis) -> None:
        document = _compress(analysis)
        with self._db.errors("store an analysis"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO analyses (image_digest, document, stored_at) VALUES (?, ?, ?)",
                (image_digest, document, _now()),
            )

    def get_analysis(self, image_digest: str) -> ImageAnalysis | None:
        with self._db.errors("read an analysis"):
            row = (
                self._db.connection()
                .execute("SELECT document FROM analyses WHERE image_digest = ?", (image_digest,))
                .fetchone()
            )
        if row is None:
            return None
        return ImageAnalysis.model_validate_json(_decompress(row[0]))

    def put_matches(self, image_digest: str, matches: Sequence[Match], db_built_at: datetime | None) -> None:
        document = _compress(_StoredMatches(db_built_at=db_built_at, matches=tuple(matches)))
        with self._db.errors("store matches"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO matches (image_digest, db_built_at, document, stored_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    image_digest,
                    to_timestamp(db_built_at) if db_built_at is not None else None,
                    document,
                    _now(),
                ),
            )

    def get_matches(self, image_digest: str) -> list[Match] | None:
        with self._db.errors("read matches"):
            row = (
                self._db.connection()
                .execute("SELECT document FROM matches WHERE image_digest = ?", (image_digest,))
                .fetchone()
            )
        if row is None:
            return None
        return list(_StoredMatches.model_validate_json(_decompress(row[0])).matches)


# ---- evaluations ---------------------------------------------------------------------------------


class SqliteEvaluationStore:
    """Evaluations by id; per image newest first (evaluated_at, then evaluation id)."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    def put_evaluation(self, evaluation: EvaluationRecord) -> None:
        with self._db.errors("store an evaluation"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO evaluations "
                "(evaluation_id, image_digest, repo_tag, evaluated_at, record) VALUES (?, ?, ?, ?, ?)",
                (
                    evaluation.evaluation_id,
                    evaluation.image_digest,
                    evaluation.repo_tag,
                    to_timestamp(evaluation.evaluated_at),
                    _compress(evaluation),
                ),
            )

    def latest_evaluation(self, image_digest: str, repo_tag: str | None = None) -> EvaluationRecord | None:
        """The newest evaluation of the image; with ``repo_tag``, the newest made for that tag."""
        query = "SELECT record FROM evaluations WHERE image_digest = ?"
        params: tuple[str, ...] = (image_digest,)
        if repo_tag is not None:
            query += " AND repo_tag = ?"
            params = (image_digest, repo_tag)
        query += " ORDER BY evaluated_at DESC, evaluation_id DESC LIMIT 1"
        with self._db.errors("read the latest evaluation"):
            row = self._db.connection().execute(query, params).fetchone()
        return EvaluationRecord.model_validate_json(_decompress(row[0])) if row is not None else None

    def list_evaluations(self, image_digest: str) -> list[EvaluationRecord]:
        with self._db.errors("list evaluations"):
            rows = (
                self._db.connection()
                .execute(
                    "SELECT record FROM evaluations WHERE image_digest = ? "
                    "ORDER BY evaluated_at DESC, evaluation_id DESC",
                    (image_digest,),
                )
                .fetchall()
            )
        return [EvaluationRecord.model_validate_json(_decompress(row[0])) for row in rows]


# ---- policy bundles ------------------------------------------------------------------------------


class SqlitePolicyStore:
    """Bundles by id (listed by id); the active one is a single-row pointer table.

    A bundle's ``active`` flag is derived from the pointer when read. Storing a bundle with
    ``active=True`` activates it; ``active=False`` leaves the current activation alone (only activating
    another bundle, or deleting this one, deactivates it). Deleting the active bundle leaves none active.
    """

    def __init__(self, db: _Database) -> None:
        self._db = db

    def put_bundle(self, bundle: StoredBundle) -> None:
        stored = _compress(bundle.model_copy(update={"active": False}))
        with self._db.transaction("store a policy bundle") as connection:
            # An upsert, not INSERT OR REPLACE: a replace deletes the row, and the cascade would
            # silently deactivate the bundle being updated.
            connection.execute(
                "INSERT INTO bundles (bundle_id, record) VALUES (?, ?) "
                "ON CONFLICT (bundle_id) DO UPDATE SET record = excluded.record",
                (bundle.bundle_id, stored),
            )
            if bundle.active:
                self._point_at(connection, bundle.bundle_id)

    def get_bundle(self, bundle_id: str) -> StoredBundle | None:
        with self._db.errors("read a policy bundle"):
            connection = self._db.connection()
            row = connection.execute(
                "SELECT record FROM bundles WHERE bundle_id = ?", (bundle_id,)
            ).fetchone()
            active = self._active_id(connection)
        return self._bundle(row[0], active) if row is not None else None

    def list_bundles(self) -> list[StoredBundle]:
        with self._db.errors("list policy bundles"):
            connection = self._db.connection()
            rows = connection.execute("SELECT record FROM bundles ORDER BY bundle_id").fetchall()
            active = self._active_id(connection)
        return [self._bundle(row[0], active) for row in rows]

    def activate(self, bundle_id: str) -> None:
        with self._db.transaction("activate a policy bundle") as connection:
            exists = connection.execute("SELECT 1 FROM bundles WHERE bundle_id = ?", (bundle_id,)).fetchone()
            if exists is None:
                raise NotFoundError(f"no policy bundle {bundle_id}")
            self._point_at(connection, bundle_id)

    def active_bundle(self) -> StoredBundle | None:
        with self._db.errors("read the active policy bundle"):
            row = (
                self._db.connection()
                .execute(
                    "SELECT b.record FROM active_bundle a JOIN bundles b ON b.bundle_id = a.bundle_id "
                    "WHERE a.singleton = 1"
                )
                .fetchone()
            )
        if row is None:
            return None
        return StoredBundle.model_validate_json(_decompress(row[0])).model_copy(update={"active": True})

    def delete_bundle(self, bundle_id: str) -> bool:
        # The pointer row goes with it (ON DELETE CASCADE).
        with self._db.errors("delete a policy bundle"):
            cursor = self._db.connection().execute("DELETE FROM bundles WHERE bundle_id = ?", (bundle_id,))
        return cursor.rowcount == 1

    @staticmethod
    def _point_at(connection: sqlite3.Connection, bundle_id: str) -> None:
        connection.execute(
            "INSERT INTO active_bundle (singleton, bundle_id) VALUES (1, ?) "
            "ON CONFLICT (singleton) DO UPDATE SET bundle_id = excluded.bundle_id",
            (bundle_id,),
        )

    @staticmethod
    def _active_id(connection: sqlite3.Connection) -> str | None:
        row = connection.execute("SELECT bundle_id FROM active_bundle WHERE singleton = 1").fetchone()
        return str(row[0]) if row is not None else None

    @staticmethod
    def _bundle(record: bytes, active_id: str | None) -> StoredBundle:
        bundle = StoredBundle.model_validate_json(_decompress(record))
        return bundle.model_copy(update={"active": bundle.bundle_id == active_id})


# ---- events and the database pointer --------------------------------------------------------------


class SqliteEventStore:
    """Events newest first (timestamp, then event id); ``since`` is exclusive (strictly later)."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    def put_event(self, event: EventRecord) -> None:
        with self._db.errors("store an event"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO events (event_id, timestamp, record) VALUES (?, ?, ?)",
                (event.event_id, to_timestamp(event.timestamp), event.model_dump_json()),
            )

    def list_events(self, since: datetime | None = None, limit: int = 100) -> list[EventRecord]:
        query = "SELECT record FROM events"
        params: tuple[Any, ...] = ()
        if since is not None:
            query += " WHERE timestamp > ?"
            params = (to_timestamp(since),)
        query += " ORDER BY timestamp DESC, event_id DESC LIMIT ?"
        with self._db.errors("list events"):
            rows = self._db.connection().execute(query, (*params, max(limit, 0))).fetchall()
        return [EventRecord.model_validate_json(row[0]) for row in rows]


class SqliteFeedMetadataStore:
    def __init__(self, db: _Database) -> None:
        self._db = db

    def get_db_pointer(self) -> DbPointer | None:
        with self._db.errors("read the database pointer"):
            row = (
                self._db.connection().execute("SELECT record FROM db_pointer WHERE singleton = 1").fetchone()
            )
        return DbPointer.model_validate_json(row[0]) if row is not None else None

    def put_db_pointer(self, pointer: DbPointer) -> None:
        with self._db.errors("store the database pointer"):
            self._db.connection().execute(
                "INSERT INTO db_pointer (singleton, record) VALUES (1, ?) "
                "ON CONFLICT (singleton) DO UPDATE SET record = excluded.record",
                (pointer.model_dump_json(),),
            )


class LocalStore:
    """Every store port for one ``$PORTWARDEN_HOME``: ``portwarden.db`` and the ``cache`` directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._db = _Database(home / DATABASE_FILE)
        self.catalog = SqliteCatalogStore(self._db)
        self.analyses = SqliteAnalysisStore(self._db)
        self.evaluations = SqliteEvaluationStore(self._db)
        self.policies = SqlitePolicyStore(self._db)
        self.events = SqliteEventStore(self._db)
        self.feeds = SqliteFeedMetadataStore(self._db)
        self.blobs = FilesystemBlobStore(home / "cache")

    @property
    def database_path(self) -> Path:
        return self._db.path

    @property
    def schema_version(self) -> int:
        return self._db.schema_version()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
