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
import mmap
import os
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
from portwarden.core.model.accounts import (
    ADMIN_ACCOUNT,
    AccountRecord,
    EventPage,
    EventQuery,
    ImportOperation,
    QueuedAnalysis,
    QueueState,
    RegistryRecord,
    SubscriptionRecord,
    UserRecord,
)
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match, MatchCounts
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
from portwarden.core.services.events import event_matches
from portwarden.core.triage.model import StoredVexDocument

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
)
_MIGRATIONS += (
    (
        2,
        (
            # Every record belongs to an account; what was there before belongs to "admin".
            """CREATE TABLE images_v2 (
                account TEXT NOT NULL,
                image_digest TEXT NOT NULL,
                image_id TEXT,
                analysis_status TEXT NOT NULL,
                repo_tags TEXT NOT NULL,
                source TEXT,
                platform TEXT,
                distro TEXT,
                package_count INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                analyzed_at TEXT,
                last_error TEXT,
                annotations TEXT NOT NULL DEFAULT '{}',
                dockerfile TEXT,
                parent_digest TEXT,
                arch TEXT,
                image_size INTEGER,
                layer_count INTEGER,
                PRIMARY KEY (account, image_digest)
            )""",
            """INSERT INTO images_v2 (account, image_digest, image_id, analysis_status, repo_tags, source,
                platform, distro, package_count, created_at, analyzed_at, last_error)
               SELECT 'admin', image_digest, image_id, analysis_status, repo_tags, source, platform, distro,
                package_count, created_at, analyzed_at, last_error FROM images""",
            "DROP TABLE images",
            "ALTER TABLE images_v2 RENAME TO images",
            "CREATE INDEX images_by_created ON images (account, created_at, image_digest)",
            "CREATE INDEX images_by_status ON images (account, analysis_status, created_at, image_digest)",
            "CREATE INDEX images_by_status_all ON images (analysis_status)",
            """CREATE TABLE tags_v2 (
                account TEXT NOT NULL,
                repo_tag TEXT NOT NULL,
                image_digest TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (account, repo_tag)
            )""",
            "INSERT INTO tags_v2 SELECT 'admin', repo_tag, image_digest, updated_at FROM tags",
            "DROP TABLE tags",
            "ALTER TABLE tags_v2 RENAME TO tags",
            """CREATE TABLE analyses_v2 (
                account TEXT NOT NULL,
                image_digest TEXT NOT NULL,
                document BLOB NOT NULL,
                stored_at TEXT NOT NULL,
                PRIMARY KEY (account, image_digest)
            )""",
            "INSERT INTO analyses_v2 SELECT 'admin', image_digest, document, stored_at FROM analyses",
            "DROP TABLE analyses",
            "ALTER TABLE analyses_v2 RENAME TO analyses",
            """CREATE TABLE matches_v2 (
                account TEXT NOT NULL,
                image_digest TEXT NOT NULL,
                db_built_at TEXT,
                document BLOB NOT NULL,
                stored_at TEXT NOT NULL,
                PRIMARY KEY (account, image_digest)
            )""",
            "INSERT INTO matches_v2 SELECT 'admin', image_digest, db_built_at, document, stored_at "
            "FROM matches",
            "DROP TABLE matches",
            "ALTER TABLE matches_v2 RENAME TO matches",
            "ALTER TABLE evaluations ADD COLUMN account TEXT NOT NULL DEFAULT 'admin'",
            "DROP INDEX evaluations_by_image",
            "CREATE INDEX evaluations_by_image ON evaluations "
            "(account, image_digest, evaluated_at, evaluation_id)",
            """CREATE TABLE bundles_v2 (
                account TEXT NOT NULL,
                bundle_id TEXT NOT NULL,
                record BLOB NOT NULL,
                PRIMARY KEY (account, bundle_id)
            )""",
            "INSERT INTO bundles_v2 SELECT 'admin', bundle_id, record FROM bundles",
            # The pointer's foreign key must name the new table, so it is copied aside first.
            "CREATE TABLE active_bundle_copy AS SELECT 'admin' AS account, bundle_id FROM active_bundle",
            "DROP TABLE active_bundle",
            "DROP TABLE bundles",
            "ALTER TABLE bundles_v2 RENAME TO bundles",
            """CREATE TABLE active_bundle (
                account TEXT PRIMARY KEY,
                bundle_id TEXT NOT NULL,
                FOREIGN KEY (account, bundle_id) REFERENCES bundles (account, bundle_id) ON DELETE CASCADE
            )""",
            "INSERT INTO active_bundle SELECT account, bundle_id FROM active_bundle_copy",
            "DROP TABLE active_bundle_copy",
            "ALTER TABLE events ADD COLUMN account TEXT NOT NULL DEFAULT 'admin'",
            "DROP INDEX events_by_time",
            "CREATE INDEX events_by_time ON events (account, timestamp, event_id)",
            """CREATE TABLE accounts (
                name TEXT PRIMARY KEY,
                record TEXT NOT NULL
            )""",
            """CREATE TABLE users (
                username TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                record TEXT NOT NULL
            )""",
            "CREATE INDEX users_by_account ON users (account, username)",
            """CREATE TABLE registries (
                account TEXT NOT NULL,
                registry TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (account, registry)
            )""",
            """CREATE TABLE subscriptions (
                account TEXT NOT NULL,
                subscription_id TEXT NOT NULL,
                subscription_key TEXT NOT NULL,
                subscription_type TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (account, subscription_id),
                UNIQUE (account, subscription_key, subscription_type)
            )""",
            """CREATE TABLE analysis_queue (
                account TEXT NOT NULL,
                image_digest TEXT NOT NULL,
                state TEXT NOT NULL,
                enqueued_at TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (account, image_digest)
            )""",
            "CREATE INDEX analysis_queue_by_state ON analysis_queue (state, enqueued_at)",
            # A per-account change counter of the images table, kept by triggers so that every
            # writer (this process's threads, a CLI beside a server) moves it: listings are cached
            # against it.
            """CREATE TABLE catalog_version (
                account TEXT PRIMARY KEY,
                version INTEGER NOT NULL
            )""",
            """CREATE TRIGGER images_inserted AFTER INSERT ON images BEGIN
                INSERT INTO catalog_version (account, version) VALUES (NEW.account, 1)
                ON CONFLICT (account) DO UPDATE SET version = version + 1;
            END""",
            """CREATE TRIGGER images_updated AFTER UPDATE ON images BEGIN
                INSERT INTO catalog_version (account, version) VALUES (NEW.account, 1)
                ON CONFLICT (account) DO UPDATE SET version = version + 1;
            END""",
            """CREATE TRIGGER images_deleted AFTER DELETE ON images BEGIN
                INSERT INTO catalog_version (account, version) VALUES (OLD.account, 1)
                ON CONFLICT (account) DO UPDATE SET version = version + 1;
            END""",
        ),
    ),
)
_MIGRATIONS += (
    (
        3,
        (
            """CREATE TABLE import_operations (
                account TEXT NOT NULL,
                uuid TEXT NOT NULL,
                created_at TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (account, uuid)
            )""",
            """CREATE TABLE import_contents (
                account TEXT NOT NULL,
                uuid TEXT NOT NULL,
                kind TEXT NOT NULL,
                digest TEXT NOT NULL,
                data BLOB NOT NULL,
                stored_at TEXT NOT NULL,
                PRIMARY KEY (account, uuid, kind, digest)
            )""",
        ),
    ),
)
_MIGRATIONS += (
    (
        4,
        (
            """CREATE TABLE vex_documents (
                account TEXT NOT NULL,
                document_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (account, document_id)
            )""",
            # When an account's documents last changed (a stored check made before then is stale).
            """CREATE TABLE vex_revisions (
                account TEXT PRIMARY KEY,
                changed_at TEXT NOT NULL
            )""",
        ),
    ),
    (
        5,
        (
            # Analysis claims: who analyzes the image and until when (a stale claim can be taken over).
            "ALTER TABLE images ADD COLUMN claim_owner TEXT",
            "ALTER TABLE images ADD COLUMN claim_deadline TEXT",
        ),
    ),
    (
        6,
        (
            # The matches' counts by severity (JSON MatchCounts), written with them so that a list of
            # images never decodes match documents. Rows stored before this version have NULL and
            # are counted (and the counts written) the first time they are read.
            "ALTER TABLE matches ADD COLUMN counts TEXT",
        ),
    ),
)
# The tables whose rows the API's cached reads are made of (``portwarden serve`` caches the answers of
# a few GET routes against the store generation below). Every other table is written in the
# background (the queue, events, imports, registries, subscriptions) and read by none of them: a
# write there leaves the cached answers valid. A new table must be added to one side or the other
# (a test checks that every table is).
GENERATION_TABLES = (
    "accounts",
    "active_bundle",
    "analyses",
    "bundles",
    "db_pointer",
    "evaluations",
    "images",
    "matches",
    "tags",
    "users",
    "vex_documents",
    "vex_revisions",
)
UNTRACKED_TABLES = (
    "analysis_queue",
    "catalog_version",
    "events",
    "import_contents",
    "import_operations",
    "registries",
    "schema_version",
    "store_generation",
    "subscriptions",
)


def _generation_trigger(table: str, event: str) -> str:
    # Names from the constant tuples above, never from input.
    return (
        f"CREATE TRIGGER {table}_{event.lower()}_generation AFTER {event} ON {table} BEGIN "  # noqa: S608
        "UPDATE store_generation SET generation = generation + 1 WHERE singleton = 1; END"
    )


_MIGRATIONS += (
    (
        7,
        (
            # One counter moved by every write to the tables above, in the writer's own transaction
            # and whoever the writer is (a server thread, a worker, `portwarden feeds sync` from cron):
            # an answer computed while it did not move is still the answer.
            """CREATE TABLE store_generation (
                singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                generation INTEGER NOT NULL
            )""",
            "INSERT INTO store_generation (singleton, generation) VALUES (1, 0)",
            *(
                _generation_trigger(table, event)
                for table in GENERATION_TABLES
                for event in ("INSERT", "UPDATE", "DELETE")
            ),
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
    # fromisoformat reads the fixed format (with its Z) an order of magnitude faster than strptime.
    return datetime.fromisoformat(text).astimezone(UTC)


def _compress(model: ValueObject) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(model.model_dump_json().encode())


def _decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data)


def _now() -> str:
    return to_timestamp(datetime.now(UTC))


class _StoredMatches(ValueObject):
    db_built_at: datetime | None = None
    matches: tuple[Match, ...] = ()


# SQLite's wal-index header, at the start of the database's ``-shm`` file while it is in WAL mode:
# two copies of a 48-byte record (version, padding, a change counter every commit increments, an
# initialised flag, page size, last frame, database size, checksums and salts), written copy 1 first
# then copy 0 by each commit; readers take it when both copies agree (sqlite.org/walformat.html). The
# format is shared by every process and SQLite version that opens the database at the same time, so
# it cannot change under a running server.
_WAL_HEADER_BYTES = 48
_WAL_HEADER_INIT_OFFSET = 12


class _WalHeaderWatch:
    """Whether the database may have changed since a token was read, without a query.

    ``token()`` is the wal-index header (both copies equal and initialised), or None when it cannot be
    read that way (no ``-shm`` file, a torn read while a commit writes it, a closed store): the caller
    then asks SQLite. Any commit by any process changes the header, so an unchanged token means
    nothing was committed since. Reading it is a copy of 96 bytes from a shared mapping: no system
    call, no lock, and the interpreter lock kept (a query gives it up and takes it back twice).

    The mapping is opened only while the store holds a connection: SQLite truncates the ``-shm`` file
    only when no connection has it open, so the mapping never outlives the file's contents.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(f"{path}-shm")
        self._lock = threading.Lock()
        self._mapping: mmap.mmap | None = None
        self._unavailable = False

    def token(self) -> bytes | None:
        mapping = self._mapping or self._open()
        if mapping is None:
            return None
        try:
            both = mapping[: 2 * _WAL_HEADER_BYTES]
        except ValueError:  # closed meanwhile
            return None
        first = both[:_WAL_HEADER_BYTES]
        if first != both[_WAL_HEADER_BYTES:] or first[_WAL_HEADER_INIT_OFFSET] != 1:
            return None
        return first

    def _open(self) -> mmap.mmap | None:
        with self._lock:
            if self._mapping is not None or self._unavailable:
                return self._mapping
            try:
                with open(self._path, "rb") as shm:
                    if os.fstat(shm.fileno()).st_size < 2 * _WAL_HEADER_BYTES:
                        return None  # not initialised yet: try again next time
                    self._mapping = mmap.mmap(shm.fileno(), 2 * _WAL_HEADER_BYTES, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                # No -shm file at all (not in WAL mode, or a VFS without shared memory): queries only.
                self._unavailable = True
                return None
            return self._mapping

    def close(self) -> None:
        with self._lock:
            mapping, self._mapping = self._mapping, None
            self._unavailable = True
        if mapping is not None:
            mapping.close()


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
            # Owner-only before SQLite first opens it: the store holds password hashes and registry
            # credentials (SQLite gives its -wal and -shm files the same mode).
            path.touch(mode=0o600, exist_ok=True)
            if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
                path.chmod(0o600)
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc}") from exc
        with self.errors("open the database"):
            self._migrate(self.connection())
        self._wal_header = _WalHeaderWatch(path)
        # (wal-index header, store generation read after it): see generation().
        self._generation_seen: tuple[bytes, int] | None = None

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

    def fetch_one(self, action: str, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        """The first row of one query on this thread's connection (None when there is none)."""
        with self.errors(action):
            return self.connection().execute(sql, parameters).fetchone()

    def fetch_all(self, action: str, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of one query on this thread's connection."""
        with self.errors(action):
            return self.connection().execute(sql, parameters).fetchall()

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

    def generation(self) -> int:
        """The store generation (see ``GENERATION_TABLES``), queried only when the wal-index header
        moved since the last query: a request that finds nothing committed since reuses that answer.

        The header is read before the query, so the generation kept with it is at least the one of
        that header: a commit between the two makes the pair conservative (the next call sees another
        header and queries again), never stale."""
        token = self._wal_header.token()
        seen = self._generation_seen
        if token is not None and seen is not None and seen[0] == token:
            return seen[1]
        row = self.fetch_one(
            "read the store generation", "SELECT generation FROM store_generation WHERE singleton = 1"
        )
        value = int(row[0]) if row is not None else 0
        if token is not None:
            self._generation_seen = (token, value)
        return value

    def close(self) -> None:
        # The mapping first: it must not outlive the connections that keep the -shm file intact.
        self._wal_header.close()
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()


# Listings of up to this many images are cached per store instance.
_LISTING_CACHE = 20_000

# ---- images and tags ----------------------------------------------------------------------------


# Literal statements (no string building): every value is a bound parameter.
_INSERT_IMAGE = (
    "INSERT {conflict} INTO images (account, image_digest, image_id, analysis_status, repo_tags, source, "
    "platform, distro, package_count, created_at, analyzed_at, last_error, annotations, dockerfile, "
    "parent_digest, arch, image_size, layer_count, claim_owner, claim_deadline) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REPLACE_IMAGE = _INSERT_IMAGE.replace("{conflict}", "OR REPLACE")
_ADD_IMAGE = _INSERT_IMAGE.replace("{conflict}", "OR IGNORE")
_SELECT_IMAGES = (
    "SELECT image_digest, image_id, analysis_status, repo_tags, source, platform, distro, package_count, "
    "created_at, analyzed_at, last_error, annotations, dockerfile, parent_digest, arch, image_size, "
    "layer_count, claim_owner, claim_deadline FROM images WHERE account = ?"
)


def _image_row(account: str, image: ImageRecord) -> tuple[Any, ...]:
    return (
        account,
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
        json.dumps(image.annotations),
        image.dockerfile,
        image.parent_digest,
        image.arch,
        image.image_size,
        image.layer_count,
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
        annotations=json.loads(row[11]),
        dockerfile=row[12],
        parent_digest=row[13],
        arch=row[14],
        image_size=row[15],
        layer_count=row[16],
        claim_owner=row[17],
        claim_deadline=from_timestamp(row[18]) if row[18] is not None else None,
    )


class _AccountBound:
    """A store opened for one account: every statement is keyed by it."""

    def __init__(self, db: _Database, account: str = ADMIN_ACCOUNT) -> None:
        self._db = db
        self._account = account


class SqliteCatalogStore(_AccountBound):
    """Images by manifest digest, and tags. Listings are newest first (created_at, then digest).

    The full listing is cached (records are immutable) until the account's catalog version moves.
    """

    def __init__(self, db: _Database, account: str = ADMIN_ACCOUNT) -> None:
        super().__init__(db, account)
        self._listing: tuple[int, list[ImageRecord]] | None = None
        self._listing_lock = threading.Lock()

    def _version(self) -> int:
        row = (
            self._db.connection()
            .execute("SELECT version FROM catalog_version WHERE account = ?", (self._account,))
            .fetchone()
        )
        return int(row[0]) if row is not None else 0

    def put_image(self, image: ImageRecord) -> None:
        with self._db.errors("store an image"):
            self._db.connection().execute(
                _REPLACE_IMAGE,
                _image_row(self._account, image),
            )

    def add_image(self, image: ImageRecord) -> bool:
        """Insert ``image`` only if its digest is unknown; False (and nothing written) otherwise."""
        with self._db.errors("add an image"):
            cursor = self._db.connection().execute(
                _ADD_IMAGE,
                _image_row(self._account, image),
            )
        return cursor.rowcount == 1

    def get_image(self, image_digest: str) -> ImageRecord | None:
        row = self._db.fetch_one(
            "read an image", _SELECT_IMAGES + " AND image_digest = ?", (self._account, image_digest)
        )
        return _image_from_row(row) if row is not None else None

    def list_images(self, limit: int = 1000) -> list[ImageRecord]:
        limit = max(limit, 0)
        if limit > _LISTING_CACHE:
            return self._select_listing(limit)[1]
        with self._listing_lock:
            cached = self._listing
        with self._db.errors("read the catalog version"):
            version = self._version()
        if cached is not None and cached[0] == version:
            return cached[1][:limit]
        version, records = self._select_listing(_LISTING_CACHE)
        with self._listing_lock:
            self._listing = (version, records)
        return records[:limit]

    def _select_listing(self, limit: int) -> tuple[int, list[ImageRecord]]:
        with self._db.errors("list images"):
            connection = self._db.connection()
            # One read transaction: the version and the rows it describes are seen together.
            connection.execute("BEGIN")
            try:
                version = self._version()
                rows = connection.execute(
                    _SELECT_IMAGES + " ORDER BY created_at DESC, image_digest DESC LIMIT ?",
                    (self._account, limit),
                ).fetchall()
            finally:
                connection.execute("COMMIT")
        return version, [_image_from_row(row) for row in rows]

    def list_images_by_status(self, status: AnalysisStatus, limit: int = 1000) -> list[ImageRecord]:
        """Images in one analysis status, newest first (e.g. every analyzed image for a rematch)."""
        rows = self._db.fetch_all(
            "list images by status",
            _SELECT_IMAGES + " AND analysis_status = ? ORDER BY created_at DESC, image_digest DESC LIMIT ?",
            (self._account, status.value, max(limit, 0)),
        )
        return [_image_from_row(row) for row in rows]

    def add_repo_tag(self, image_digest: str, repo_tag: str) -> None:
        """Read-modify-write of the tag list inside one write transaction: atomic against other writers.
        Tags stay in the order they were added; past ``REPO_TAGS_KEPT`` the oldest is dropped."""
        with self._db.transaction("add a tag to an image") as connection:
            row = connection.execute(
                "SELECT repo_tags FROM images WHERE account = ? AND image_digest = ?",
                (self._account, image_digest),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no image {image_digest}")
            tags: list[str] = json.loads(row[0])
            if repo_tag not in tags:
                connection.execute(
                    "UPDATE images SET repo_tags = ? WHERE account = ? AND image_digest = ?",
                    (json.dumps([*tags, repo_tag][-REPO_TAGS_KEPT:]), self._account, image_digest),
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
        ``last_error`` is set to ``error`` (cleared when None); a status other than analyzing clears
        the claim. NotFoundError for an unknown digest."""
        # A claim only means something while the image is analyzing.
        keep_claim = int(status is AnalysisStatus.ANALYZING)
        with self._db.transaction("update an image's status") as connection:
            if expected is None:
                cursor = connection.execute(
                    "UPDATE images SET analysis_status = ?, last_error = ?, "
                    "claim_owner = CASE WHEN ? THEN claim_owner END, "
                    "claim_deadline = CASE WHEN ? THEN claim_deadline END "
                    "WHERE account = ? AND image_digest = ?",
                    (status.value, error, keep_claim, keep_claim, self._account, image_digest),
                )
            else:
                cursor = connection.execute(
                    "UPDATE images SET analysis_status = ?, last_error = ?, "
                    "claim_owner = CASE WHEN ? THEN claim_owner END, "
                    "claim_deadline = CASE WHEN ? THEN claim_deadline END "
                    "WHERE account = ? AND image_digest = ? AND analysis_status = ?",
                    (
                        status.value,
                        error,
                        keep_claim,
                        keep_claim,
                        self._account,
                        image_digest,
                        expected.value,
                    ),
                )
            if cursor.rowcount == 1:
                return True
            exists = connection.execute(
                "SELECT 1 FROM images WHERE account = ? AND image_digest = ?", (self._account, image_digest)
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
                "claim_deadline = ? WHERE account = ? AND image_digest = ? AND ("
                "analysis_status IN ('not_analyzed', 'analysis_failed') "
                "OR (? AND analysis_status = 'analyzed') "
                "OR (analysis_status = 'analyzing' AND (claim_deadline IS NULL OR claim_deadline < ?)))",
                (
                    claim.owner,
                    to_timestamp(claim.deadline),
                    self._account,
                    image_digest,
                    int(force),
                    to_timestamp(now),
                ),
            )
            if cursor.rowcount == 1:
                return True
            exists = connection.execute(
                "SELECT 1 FROM images WHERE account = ? AND image_digest = ?", (self._account, image_digest)
            ).fetchone()
        if exists is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def release_claim(self, image_digest: str, owner: str | None, error: str) -> bool:
        with self._db.transaction("release an analysis claim") as connection:
            cursor = connection.execute(
                "UPDATE images SET analysis_status = 'analysis_failed', last_error = ?, claim_owner = NULL, "
                "claim_deadline = NULL WHERE account = ? AND image_digest = ? "
                "AND analysis_status = 'analyzing' AND claim_owner IS ?",
                (error, self._account, image_digest, owner),
            )
        return cursor.rowcount == 1

    def mark_analyzed(self, image_digest: str, summary: AnalyzedSummary, *, owner: str | None = None) -> bool:
        statement = _MARK_ANALYZED if owner is None else _MARK_ANALYZED + _UNDER_CLAIM
        with self._db.transaction("record an analyzed image") as connection:
            cursor = connection.execute(
                statement,
                (
                    to_timestamp(summary.analyzed_at),
                    summary.package_count,
                    summary.distro,
                    self._account,
                    image_digest,
                    *((owner,) if owner is not None else ()),
                ),
            )
            if cursor.rowcount == 1:
                return True
            known = connection.execute(
                "SELECT 1 FROM images WHERE account = ? AND image_digest = ?", (self._account, image_digest)
            ).fetchone()
        if known is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def put_tag(self, tag: TagRecord) -> None:
        with self._db.errors("store a tag"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO tags (account, repo_tag, image_digest, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (self._account, tag.repo_tag, tag.image_digest, to_timestamp(tag.updated_at)),
            )

    def get_tag(self, repo_tag: str) -> TagRecord | None:
        row = self._db.fetch_one(
            "read a tag",
            "SELECT repo_tag, image_digest, updated_at FROM tags WHERE account = ? AND repo_tag = ?",
            (self._account, repo_tag),
        )
        if row is None:
            return None
        return TagRecord(repo_tag=row[0], image_digest=row[1], updated_at=from_timestamp(row[2]))

    def list_tags(self) -> list[TagRecord]:
        """Every tag, sorted by name."""
        rows = self._db.fetch_all(
            "list tags",
            "SELECT repo_tag, image_digest, updated_at FROM tags WHERE account = ? ORDER BY repo_tag",
            (self._account,),
        )
        return [TagRecord(repo_tag=r[0], image_digest=r[1], updated_at=from_timestamp(r[2])) for r in rows]

    def delete_image(self, image_digest: str) -> bool:
        """The image row, its tags, analysis, matches and evaluations, in one transaction."""
        key = (self._account, image_digest)
        with self._db.transaction("delete an image") as connection:
            cursor = connection.execute("DELETE FROM images WHERE account = ? AND image_digest = ?", key)
            for table in _IMAGE_OWNED_TABLES:
                connection.execute(table, key)
        return cursor.rowcount == 1


# Literal statements, one per table that hangs off an image.
_IMAGE_OWNED_TABLES = (
    "DELETE FROM tags WHERE account = ? AND image_digest = ?",
    "DELETE FROM analyses WHERE account = ? AND image_digest = ?",
    "DELETE FROM matches WHERE account = ? AND image_digest = ?",
    "DELETE FROM evaluations WHERE account = ? AND image_digest = ?",
)


# ---- analyses and matches ------------------------------------------------------------------------


class SqliteAnalysisStore(_AccountBound):
    def put_analysis(self, image_digest: str, analysis: ImageAnalysis) -> None:
        document = _compress(analysis)
        with self._db.errors("store an analysis"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO analyses (account, image_digest, document, stored_at) "
                "VALUES (?, ?, ?, ?)",
                (self._account, image_digest, document, _now()),
            )

    def get_analysis(self, image_digest: str) -> ImageAnalysis | None:
        row = self._db.fetch_one(
            "read an analysis",
            "SELECT document FROM analyses WHERE account = ? AND image_digest = ?",
            (self._account, image_digest),
        )
        if row is None:
            return None
        return ImageAnalysis.model_validate_json(_decompress(row[0]))

    def put_matches(self, image_digest: str, matches: Sequence[Match], db_built_at: datetime | None) -> None:
        document = _compress(_StoredMatches(db_built_at=db_built_at, matches=tuple(matches)))
        counts = MatchCounts.of(matches).model_dump_json()
        with self._db.errors("store matches"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO matches "
                "(account, image_digest, db_built_at, document, stored_at, counts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._account,
                    image_digest,
                    to_timestamp(db_built_at) if db_built_at is not None else None,
                    document,
                    _now(),
                    counts,
                ),
            )

    def get_matches(self, image_digest: str) -> list[Match] | None:
        row = self._db.fetch_one(
            "read matches",
            "SELECT document FROM matches WHERE account = ? AND image_digest = ?",
            (self._account, image_digest),
        )
        if row is None:
            return None
        return list(_StoredMatches.model_validate_json(_decompress(row[0])).matches)

    def get_match_counts(self, image_digest: str) -> MatchCounts | None:
        row = self._db.fetch_one(
            "read match counts",
            "SELECT counts FROM matches WHERE account = ? AND image_digest = ?",
            (self._account, image_digest),
        )
        if row is None:
            return None
        if row[0] is not None:
            return MatchCounts.model_validate_json(row[0])
        return self._backfill_counts(image_digest)

    def _backfill_counts(self, image_digest: str) -> MatchCounts | None:
        """Counts for matches stored before the counts were: counted once, then written beside them."""
        with self._db.transaction("count stored matches") as connection:
            row = connection.execute(
                "SELECT document, counts FROM matches WHERE account = ? AND image_digest = ?",
                (self._account, image_digest),
            ).fetchone()
            if row is None:
                return None
            if row[1] is not None:  # another reader counted them first
                return MatchCounts.model_validate_json(row[1])
            counts = MatchCounts.of(_StoredMatches.model_validate_json(_decompress(row[0])).matches)
            connection.execute(
                "UPDATE matches SET counts = ? WHERE account = ? AND image_digest = ? AND counts IS NULL",
                (counts.model_dump_json(), self._account, image_digest),
            )
        return counts


# ---- evaluations ---------------------------------------------------------------------------------


class SqliteEvaluationStore(_AccountBound):
    """Evaluations by id; per image newest first (evaluated_at, then evaluation id)."""

    def put_evaluation(self, evaluation: EvaluationRecord) -> None:
        with self._db.errors("store an evaluation"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO evaluations "
                "(account, evaluation_id, image_digest, repo_tag, evaluated_at, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._account,
                    evaluation.evaluation_id,
                    evaluation.image_digest,
                    evaluation.repo_tag,
                    to_timestamp(evaluation.evaluated_at),
                    _compress(evaluation),
                ),
            )

    def latest_evaluation(self, image_digest: str, repo_tag: str | None = None) -> EvaluationRecord | None:
        """The newest evaluation of the image; with ``repo_tag``, the newest made for that tag."""
        query = "SELECT record FROM evaluations WHERE account = ? AND image_digest = ?"
        params: tuple[str, ...] = (self._account, image_digest)
        if repo_tag is not None:
            query += " AND repo_tag = ?"
            params = (self._account, image_digest, repo_tag)
        query += " ORDER BY evaluated_at DESC, evaluation_id DESC LIMIT 1"
        with self._db.errors("read the latest evaluation"):
            row = self._db.connection().execute(query, params).fetchone()
        return EvaluationRecord.model_validate_json(_decompress(row[0])) if row is not None else None

    def list_evaluations(self, image_digest: str) -> list[EvaluationRecord]:
        rows = self._db.fetch_all(
            "list evaluations",
            "SELECT record FROM evaluations WHERE account = ? AND image_digest = ? "
            "ORDER BY evaluated_at DESC, evaluation_id DESC",
            (self._account, image_digest),
        )
        return [EvaluationRecord.model_validate_json(_decompress(row[0])) for row in rows]


# ---- policy bundles ------------------------------------------------------------------------------


class SqlitePolicyStore(_AccountBound):
    """Bundles by id (listed by id); the active one is a single-row pointer table.

    A bundle's ``active`` flag is derived from the pointer when read. Storing a bundle with
    ``active=True`` activates it; ``active=False`` leaves the current activation alone (only activating
    another bundle, or deleting this one, deactivates it). Deleting the active bundle leaves none active.
    """

    def put_bundle(self, bundle: StoredBundle) -> None:
        stored = _compress(bundle.model_copy(update={"active": False}))
        with self._db.transaction("store a policy bundle") as connection:
            # An upsert, not INSERT OR REPLACE: a replace deletes the row, and the cascade would
            # silently deactivate the bundle being updated.
            connection.execute(
                "INSERT INTO bundles (account, bundle_id, record) VALUES (?, ?, ?) "
                "ON CONFLICT (account, bundle_id) DO UPDATE SET record = excluded.record",
                (self._account, bundle.bundle_id, stored),
            )
            if bundle.active:
                self._point_at(connection, bundle.bundle_id)

    def get_bundle(self, bundle_id: str) -> StoredBundle | None:
        with self._db.errors("read a policy bundle"):
            connection = self._db.connection()
            row = connection.execute(
                "SELECT record FROM bundles WHERE account = ? AND bundle_id = ?", (self._account, bundle_id)
            ).fetchone()
            active = self._active_id(connection)
        return self._bundle(row[0], active) if row is not None else None

    def list_bundles(self) -> list[StoredBundle]:
        with self._db.errors("list policy bundles"):
            connection = self._db.connection()
            rows = connection.execute(
                "SELECT record FROM bundles WHERE account = ? ORDER BY bundle_id", (self._account,)
            ).fetchall()
            active = self._active_id(connection)
        return [self._bundle(row[0], active) for row in rows]

    def activate(self, bundle_id: str) -> None:
        with self._db.transaction("activate a policy bundle") as connection:
            exists = connection.execute(
                "SELECT 1 FROM bundles WHERE account = ? AND bundle_id = ?", (self._account, bundle_id)
            ).fetchone()
            if exists is None:
                raise NotFoundError(f"no policy bundle {bundle_id}")
            self._point_at(connection, bundle_id)

    def active_bundle(self) -> StoredBundle | None:
        row = self._db.fetch_one(
            "read the active policy bundle",
            "SELECT b.record FROM active_bundle a "
            "JOIN bundles b ON b.account = a.account AND b.bundle_id = a.bundle_id "
            "WHERE a.account = ?",
            (self._account,),
        )
        if row is None:
            return None
        return StoredBundle.model_validate_json(_decompress(row[0])).model_copy(update={"active": True})

    def delete_bundle(self, bundle_id: str) -> bool:
        # The pointer row goes with it (ON DELETE CASCADE).
        with self._db.errors("delete a policy bundle"):
            cursor = self._db.connection().execute(
                "DELETE FROM bundles WHERE account = ? AND bundle_id = ?", (self._account, bundle_id)
            )
        return cursor.rowcount == 1

    def _point_at(self, connection: sqlite3.Connection, bundle_id: str) -> None:
        connection.execute(
            "INSERT INTO active_bundle (account, bundle_id) VALUES (?, ?) "
            "ON CONFLICT (account) DO UPDATE SET bundle_id = excluded.bundle_id",
            (self._account, bundle_id),
        )

    def _active_id(self, connection: sqlite3.Connection) -> str | None:
        row = connection.execute(
            "SELECT bundle_id FROM active_bundle WHERE account = ?", (self._account,)
        ).fetchone()
        return str(row[0]) if row is not None else None

    @staticmethod
    def _bundle(record: bytes, active_id: str | None) -> StoredBundle:
        bundle = StoredBundle.model_validate_json(_decompress(record))
        return bundle.model_copy(update={"active": bundle.bundle_id == active_id})


# ---- events and the database pointer --------------------------------------------------------------


class SqliteEventStore(_AccountBound):
    """Events newest first (timestamp, then event id); ``since`` is exclusive (strictly later)."""

    def put_event(self, event: EventRecord) -> None:
        with self._db.errors("store an event"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO events (account, event_id, timestamp, record) VALUES (?, ?, ?, ?)",
                (self._account, event.event_id, to_timestamp(event.timestamp), event.model_dump_json()),
            )

    def list_events(self, since: datetime | None = None, limit: int = 100) -> list[EventRecord]:
        if limit <= 0:
            return []
        return self._select(EventQuery(since=since), limit=limit, offset=0)

    def query_events(self, query: EventQuery) -> EventPage:
        offset = (query.page - 1) * query.limit
        # One row more than the page shows whether there is a next page.
        records = self._select(query, limit=query.limit + 1, offset=offset)
        return EventPage(
            events=tuple(records[: query.limit]), page=query.page, next_page=len(records) > query.limit
        )

    def get_event(self, event_id: str) -> EventRecord | None:
        row = self._db.fetch_one(
            "read an event",
            "SELECT record FROM events WHERE account = ? AND event_id = ?",
            (self._account, event_id),
        )
        return EventRecord.model_validate_json(row[0]) if row is not None else None

    def delete_event(self, event_id: str) -> bool:
        with self._db.errors("delete an event"):
            cursor = self._db.connection().execute(
                "DELETE FROM events WHERE account = ? AND event_id = ?", (self._account, event_id)
            )
        return cursor.rowcount == 1

    def delete_events(self, query: EventQuery) -> list[str]:
        with self._db.transaction("delete events") as connection:
            ids = [
                record.event_id for record in self._select(query, limit=-1, offset=0, connection=connection)
            ]
            connection.executemany(
                "DELETE FROM events WHERE account = ? AND event_id = ?", [(self._account, i) for i in ids]
            )
        return ids

    def _select(
        self,
        query: EventQuery,
        *,
        limit: int,
        offset: int,
        connection: sqlite3.Connection | None = None,
    ) -> list[EventRecord]:
        """Time bounds in SQL (indexed); level, type and resource filters on the decoded records,
        because the type filter is a wildcard pattern and records are few per page."""
        sql = "SELECT record FROM events WHERE account = ?"
        params: list[Any] = [self._account]
        if query.since is not None:
            sql += " AND timestamp > ?"
            params.append(to_timestamp(query.since))
        if query.before is not None:
            sql += " AND timestamp < ?"
            params.append(to_timestamp(query.before))
        sql += " ORDER BY timestamp DESC, event_id DESC"
        selected: list[EventRecord] = []
        skipped = 0
        with self._db.errors("list events"):
            cursor = (connection or self._db.connection()).execute(sql, params)
            for row in cursor:
                record = EventRecord.model_validate_json(row[0])
                if not event_matches(record, query):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                selected.append(record)
                if 0 <= limit <= len(selected):
                    break
        return selected


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


# ---- SBOM imports ------------------------------------------------------------------------------


class SqliteImportStore(_AccountBound):
    def put_operation(self, operation: ImportOperation) -> None:
        with self._db.errors("store an import operation"):
            self._db.connection().execute(
                "INSERT INTO import_operations (account, uuid, created_at, record) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, uuid) DO UPDATE SET record = excluded.record",
                (
                    self._account,
                    operation.uuid,
                    to_timestamp(operation.created_at),
                    operation.model_dump_json(),
                ),
            )

    def get_operation(self, uuid: str) -> ImportOperation | None:
        row = self._db.fetch_one(
            "read an import operation",
            "SELECT record FROM import_operations WHERE account = ? AND uuid = ?",
            (self._account, uuid),
        )
        return ImportOperation.model_validate_json(row[0]) if row is not None else None

    def list_operations(self) -> list[ImportOperation]:
        rows = self._db.fetch_all(
            "list import operations",
            "SELECT record FROM import_operations WHERE account = ? ORDER BY created_at DESC",
            (self._account,),
        )
        return [ImportOperation.model_validate_json(row[0]) for row in rows]

    def delete_operation(self, uuid: str) -> bool:
        with self._db.transaction("delete an import operation") as connection:
            cursor = connection.execute(
                "DELETE FROM import_operations WHERE account = ? AND uuid = ?", (self._account, uuid)
            )
            connection.execute(
                "DELETE FROM import_contents WHERE account = ? AND uuid = ?", (self._account, uuid)
            )
        return cursor.rowcount == 1

    def put_content(self, uuid: str, kind: str, digest: str, data: bytes) -> None:
        with self._db.errors("store an import part"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO import_contents (account, uuid, kind, digest, data, stored_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (self._account, uuid, kind, digest, data, _now()),
            )

    def get_content(self, uuid: str, kind: str, digest: str) -> bytes | None:
        row = self._db.fetch_one(
            "read an import part",
            "SELECT data FROM import_contents WHERE account = ? AND uuid = ? AND kind = ? AND digest = ?",
            (self._account, uuid, kind, digest),
        )
        return bytes(row[0]) if row is not None else None

    def list_contents(self, uuid: str, kind: str) -> list[str]:
        rows = self._db.fetch_all(
            "list import parts",
            "SELECT digest FROM import_contents WHERE account = ? AND uuid = ? AND kind = ? "
            "ORDER BY stored_at",
            (self._account, uuid, kind),
        )
        return [str(row[0]) for row in rows]


class SqliteVexStore(_AccountBound):
    """The account's VEX documents (the record as JSON), oldest first, and when they last changed."""

    def _touch(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            "INSERT INTO vex_revisions (account, changed_at) VALUES (?, ?) "
            "ON CONFLICT (account) DO UPDATE SET changed_at = excluded.changed_at",
            (self._account, _now()),
        )

    def put_document(self, document: StoredVexDocument) -> None:
        with self._db.transaction("store a VEX document") as connection:
            connection.execute(
                "INSERT INTO vex_documents (account, document_id, created_at, record) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, document_id) DO UPDATE SET record = excluded.record",
                (self._account, document.id, to_timestamp(document.created_at), document.model_dump_json()),
            )
            self._touch(connection)

    def get_document(self, document_id: str) -> StoredVexDocument | None:
        row = self._db.fetch_one(
            "read a VEX document",
            "SELECT record FROM vex_documents WHERE account = ? AND document_id = ?",
            (self._account, document_id),
        )
        return StoredVexDocument.model_validate_json(row[0]) if row is not None else None

    def list_documents(self) -> list[StoredVexDocument]:
        rows = self._db.fetch_all(
            "list VEX documents",
            "SELECT record FROM vex_documents WHERE account = ? ORDER BY created_at, document_id",
            (self._account,),
        )
        return [StoredVexDocument.model_validate_json(row[0]) for row in rows]

    def delete_document(self, document_id: str) -> bool:
        with self._db.transaction("delete a VEX document") as connection:
            cursor = connection.execute(
                "DELETE FROM vex_documents WHERE account = ? AND document_id = ?",
                (self._account, document_id),
            )
            if cursor.rowcount == 1:
                self._touch(connection)
        return cursor.rowcount == 1

    def revision(self) -> datetime | None:
        row = self._db.fetch_one(
            "read the VEX revision",
            "SELECT changed_at FROM vex_revisions WHERE account = ?",
            (self._account,),
        )
        return from_timestamp(row[0]) if row is not None else None


# ---- accounts, registries, subscriptions, the analysis queue ---------------------------------------


class SqliteAccountStore:
    """Accounts and users (spans accounts). Deleting an account removes everything it owns."""

    _OWNED_TABLES = (
        "DELETE FROM users WHERE account = ?",
        "DELETE FROM images WHERE account = ?",
        "DELETE FROM tags WHERE account = ?",
        "DELETE FROM analyses WHERE account = ?",
        "DELETE FROM matches WHERE account = ?",
        "DELETE FROM evaluations WHERE account = ?",
        "DELETE FROM active_bundle WHERE account = ?",
        "DELETE FROM bundles WHERE account = ?",
        "DELETE FROM events WHERE account = ?",
        "DELETE FROM registries WHERE account = ?",
        "DELETE FROM subscriptions WHERE account = ?",
        "DELETE FROM analysis_queue WHERE account = ?",
        "DELETE FROM import_operations WHERE account = ?",
        "DELETE FROM import_contents WHERE account = ?",
        "DELETE FROM vex_documents WHERE account = ?",
        "DELETE FROM vex_revisions WHERE account = ?",
    )

    def __init__(self, db: _Database) -> None:
        self._db = db

    def add_account(self, account: AccountRecord) -> bool:
        with self._db.errors("add an account"):
            cursor = self._db.connection().execute(
                "INSERT OR IGNORE INTO accounts (name, record) VALUES (?, ?)",
                (account.name, account.model_dump_json()),
            )
        return cursor.rowcount == 1

    def get_account(self, name: str) -> AccountRecord | None:
        row = self._db.fetch_one("read an account", "SELECT record FROM accounts WHERE name = ?", (name,))
        return AccountRecord.model_validate_json(row[0]) if row is not None else None

    def list_accounts(self) -> list[AccountRecord]:
        with self._db.errors("list accounts"):
            rows = self._db.connection().execute("SELECT record FROM accounts ORDER BY name").fetchall()
        return [AccountRecord.model_validate_json(row[0]) for row in rows]

    def put_account(self, account: AccountRecord) -> None:
        with self._db.errors("store an account"):
            self._db.connection().execute(
                "INSERT INTO accounts (name, record) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                (account.name, account.model_dump_json()),
            )

    def delete_account(self, name: str) -> bool:
        with self._db.transaction("delete an account") as connection:
            cursor = connection.execute("DELETE FROM accounts WHERE name = ?", (name,))
            for statement in self._OWNED_TABLES:
                connection.execute(statement, (name,))
        return cursor.rowcount == 1

    def add_user(self, user: UserRecord) -> bool:
        with self._db.errors("add a user"):
            cursor = self._db.connection().execute(
                "INSERT OR IGNORE INTO users (username, account, record) VALUES (?, ?, ?)",
                (user.username, user.account, user.model_dump_json()),
            )
        return cursor.rowcount == 1

    def get_user(self, username: str) -> UserRecord | None:
        row = self._db.fetch_one("read a user", "SELECT record FROM users WHERE username = ?", (username,))
        return UserRecord.model_validate_json(row[0]) if row is not None else None

    def list_users(self, account: str) -> list[UserRecord]:
        rows = self._db.fetch_all(
            "list users", "SELECT record FROM users WHERE account = ? ORDER BY username", (account,)
        )
        return [UserRecord.model_validate_json(row[0]) for row in rows]

    def put_user(self, user: UserRecord) -> None:
        with self._db.errors("store a user"):
            self._db.connection().execute(
                "INSERT INTO users (username, account, record) VALUES (?, ?, ?) "
                "ON CONFLICT (username) DO UPDATE SET account = excluded.account, record = excluded.record",
                (user.username, user.account, user.model_dump_json()),
            )

    def delete_user(self, username: str) -> bool:
        with self._db.errors("delete a user"):
            cursor = self._db.connection().execute("DELETE FROM users WHERE username = ?", (username,))
        return cursor.rowcount == 1


class SqliteRegistryStore(_AccountBound):
    """Registry credentials by ``registry`` (as given: host[:port] and an optional repository prefix)."""

    def put_registry(self, registry: RegistryRecord) -> None:
        with self._db.errors("store a registry"):
            self._db.connection().execute(
                "INSERT INTO registries (account, registry, record) VALUES (?, ?, ?) "
                "ON CONFLICT (account, registry) DO UPDATE SET record = excluded.record",
                (self._account, registry.registry, registry.model_dump_json()),
            )

    def get_registry(self, registry: str) -> RegistryRecord | None:
        row = self._db.fetch_one(
            "read a registry",
            "SELECT record FROM registries WHERE account = ? AND registry = ?",
            (self._account, registry),
        )
        return RegistryRecord.model_validate_json(row[0]) if row is not None else None

    def list_registries(self) -> list[RegistryRecord]:
        rows = self._db.fetch_all(
            "list registries",
            "SELECT record FROM registries WHERE account = ? ORDER BY registry",
            (self._account,),
        )
        return [RegistryRecord.model_validate_json(row[0]) for row in rows]

    def delete_registry(self, registry: str) -> bool:
        with self._db.errors("delete a registry"):
            cursor = self._db.connection().execute(
                "DELETE FROM registries WHERE account = ? AND registry = ?", (self._account, registry)
            )
        return cursor.rowcount == 1


class SqliteSubscriptionStore(_AccountBound):
    """Subscriptions by id; (key, type) is unique per account."""

    def add_subscription(self, subscription: SubscriptionRecord) -> SubscriptionRecord:
        with self._db.transaction("add a subscription") as connection:
            connection.execute(
                "INSERT OR IGNORE INTO subscriptions "
                "(account, subscription_id, subscription_key, subscription_type, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    self._account,
                    subscription.subscription_id,
                    subscription.subscription_key,
                    subscription.subscription_type.value,
                    subscription.model_dump_json(),
                ),
            )
            row = connection.execute(
                "SELECT record FROM subscriptions "
                "WHERE account = ? AND subscription_key = ? AND subscription_type = ?",
                (self._account, subscription.subscription_key, subscription.subscription_type.value),
            ).fetchone()
        return SubscriptionRecord.model_validate_json(row[0])

    def put_subscription(self, subscription: SubscriptionRecord) -> None:
        with self._db.errors("store a subscription"):
            self._db.connection().execute(
                "INSERT INTO subscriptions "
                "(account, subscription_id, subscription_key, subscription_type, record) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account, subscription_id) DO UPDATE SET record = excluded.record",
                (
                    self._account,
                    subscription.subscription_id,
                    subscription.subscription_key,
                    subscription.subscription_type.value,
                    subscription.model_dump_json(),
                ),
            )

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = self._db.fetch_one(
            "read a subscription",
            "SELECT record FROM subscriptions WHERE account = ? AND subscription_id = ?",
            (self._account, subscription_id),
        )
        return SubscriptionRecord.model_validate_json(row[0]) if row is not None else None

    def list_subscriptions(
        self, subscription_key: str | None = None, subscription_type: str | None = None
    ) -> list[SubscriptionRecord]:
        sql = "SELECT record FROM subscriptions WHERE account = ?"
        params: list[str] = [self._account]
        if subscription_key is not None:
            sql += " AND subscription_key = ?"
            params.append(subscription_key)
        if subscription_type is not None:
            sql += " AND subscription_type = ?"
            params.append(subscription_type)
        sql += " ORDER BY subscription_key, subscription_type"
        with self._db.errors("list subscriptions"):
            rows = self._db.connection().execute(sql, params).fetchall()
        return [SubscriptionRecord.model_validate_json(row[0]) for row in rows]

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._db.errors("delete a subscription"):
            cursor = self._db.connection().execute(
                "DELETE FROM subscriptions WHERE account = ? AND subscription_id = ?",
                (self._account, subscription_id),
            )
        return cursor.rowcount == 1


class SqliteAnalysisQueue:
    """The durable queue of ``portwarden serve``: one row per (account, digest) while queued or running."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    def enqueue(self, item: QueuedAnalysis) -> bool:
        queued = item.model_copy(update={"state": QueueState.QUEUED})
        with self._db.errors("queue an analysis"):
            cursor = self._db.connection().execute(
                "INSERT OR IGNORE INTO analysis_queue (account, image_digest, state, enqueued_at, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    item.account,
                    item.image_digest,
                    QueueState.QUEUED.value,
                    to_timestamp(item.enqueued_at),
                    queued.model_dump_json(),
                ),
            )
        return cursor.rowcount == 1

    def claim(self) -> QueuedAnalysis | None:
        with self._db.transaction("claim a queued analysis") as connection:
            row = connection.execute(
                "SELECT record FROM analysis_queue WHERE state = ? ORDER BY enqueued_at LIMIT 1",
                (QueueState.QUEUED.value,),
            ).fetchone()
            if row is None:
                return None
            item = QueuedAnalysis.model_validate_json(row[0])
            claimed = item.model_copy(update={"state": QueueState.RUNNING, "attempts": item.attempts + 1})
            connection.execute(
                "UPDATE analysis_queue SET state = ?, record = ? WHERE account = ? AND image_digest = ?",
                (QueueState.RUNNING.value, claimed.model_dump_json(), item.account, item.image_digest),
            )
        return claimed

    def finish(self, account: str, image_digest: str) -> None:
        with self._db.errors("finish a queued analysis"):
            self._db.connection().execute(
                "DELETE FROM analysis_queue WHERE account = ? AND image_digest = ?", (account, image_digest)
            )

    def requeue_running(self, max_attempts: int) -> tuple[list[QueuedAnalysis], list[QueuedAnalysis]]:
        requeued: list[QueuedAnalysis] = []
        given_up: list[QueuedAnalysis] = []
        with self._db.transaction("requeue interrupted analyses") as connection:
            rows = connection.execute(
                "SELECT record FROM analysis_queue WHERE state = ?", (QueueState.RUNNING.value,)
            ).fetchall()
            for row in rows:
                item = QueuedAnalysis.model_validate_json(row[0])
                key = (item.account, item.image_digest)
                if item.attempts >= max_attempts:
                    connection.execute(
                        "DELETE FROM analysis_queue WHERE account = ? AND image_digest = ?", key
                    )
                    given_up.append(item)
                    continue
                again = item.model_copy(update={"state": QueueState.QUEUED})
                connection.execute(
                    "UPDATE analysis_queue SET state = ?, record = ? WHERE account = ? AND image_digest = ?",
                    (QueueState.QUEUED.value, again.model_dump_json(), *key),
                )
                requeued.append(again)
        return requeued, given_up

    def pending(self) -> int:
        with self._db.errors("count queued analyses"):
            row = self._db.connection().execute("SELECT COUNT(*) FROM analysis_queue").fetchone()
        return int(row[0])


_MARK_ANALYZED = (
    "UPDATE images SET analysis_status = 'analyzed', analyzed_at = ?, package_count = ?, "
    "distro = ?, last_error = NULL, claim_owner = NULL, claim_deadline = NULL "
    "WHERE account = ? AND image_digest = ?"
)
_UNDER_CLAIM = " AND analysis_status = 'analyzing' AND claim_owner = ?"


class LocalStore:
    """Every store port for one ``$PORTWARDEN_HOME``: ``portwarden.db`` and the ``cache`` directory.

    The account-owned stores are opened for ``account`` (``admin`` unless given); :meth:`for_account`
    gives another account's view of the same database.
    """

    def __init__(self, home: Path, account: str = ADMIN_ACCOUNT, *, _db: _Database | None = None) -> None:
        self.home = home
        self.account = account
        self._owns_db = _db is None
        self._db = _db or _Database(home / DATABASE_FILE)
        self.catalog = SqliteCatalogStore(self._db, account)
        self.analyses = SqliteAnalysisStore(self._db, account)
        self.evaluations = SqliteEvaluationStore(self._db, account)
        self.policies = SqlitePolicyStore(self._db, account)
        self.events = SqliteEventStore(self._db, account)
        self.registries = SqliteRegistryStore(self._db, account)
        self.subscriptions = SqliteSubscriptionStore(self._db, account)
        self.imports = SqliteImportStore(self._db, account)
        self.vex = SqliteVexStore(self._db, account)
        self.feeds = SqliteFeedMetadataStore(self._db)
        self.accounts = SqliteAccountStore(self._db)
        self.queue = SqliteAnalysisQueue(self._db)
        self.blobs = FilesystemBlobStore(home / "cache")

    def for_account(self, account: str) -> LocalStore:
        """The same database, opened for ``account`` (closing it leaves this store open)."""
        return LocalStore(self.home, account, _db=self._db)

    @property
    def database_path(self) -> Path:
        return self._db.path

    @property
    def schema_version(self) -> int:
        return self._db.schema_version()

    def generation(self) -> int:
        """The store generation: moves with every committed write to ``GENERATION_TABLES``, whichever
        process writes."""
        return self._db.generation()

    def close(self) -> None:
        if self._owns_db:
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
