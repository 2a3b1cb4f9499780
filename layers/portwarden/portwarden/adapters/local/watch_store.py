"""The watch-mode state of ``portwarden serve`` and ``watch run-once``: one SQLite file (``watch.db``).

* the Outbox: notifications registered once by id, one delivery row per (notification, channel,
  target), and the delivery log (every attempt with its outcome);
* which vulnerability namespaces each analyzed image has packages in (so a feed change re-matches only
  the images it can touch, without reading every stored analysis);
* the database fingerprints the last rematch ran against (so a ``feeds sync`` from cron is noticed).

Connections are per thread; claims are one conditional UPDATE, so two deliverers never send one item.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portwarden.core.errors import StoreError
from portwarden.core.ports import OutboxItem
from portwarden.core.watch.notifications import DeliveryAttempt, DeliveryOutcome, Notification

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS notifications (
        notification_id TEXT PRIMARY KEY, account TEXT NOT NULL, type TEXT NOT NULL,
        document TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        notification_id TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,
        state TEXT NOT NULL, attempts INTEGER NOT NULL, enqueued_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL, claimed_at TEXT,
        PRIMARY KEY (notification_id, channel, target))""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at)",
    """CREATE TABLE IF NOT EXISTS delivery_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, notification_id TEXT NOT NULL, account TEXT NOT NULL,
        document TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS delivery_log_by_id ON delivery_log (notification_id)",
    """CREATE TABLE IF NOT EXISTS image_namespaces (
        account TEXT NOT NULL, image_digest TEXT NOT NULL, namespace TEXT NOT NULL,
        PRIMARY KEY (account, image_digest, namespace)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS image_namespaces_by_ns ON image_namespaces (namespace)",
    """CREATE TABLE IF NOT EXISTS indexed_images (
        account TEXT NOT NULL, image_digest TEXT NOT NULL, has_matches INTEGER NOT NULL,
        PRIMARY KEY (account, image_digest)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)

_DUE, _CLAIMED, _DELIVERED, _FAILED = "due", "claimed", "delivered", "failed"


def _ts(moment: datetime) -> str:
    # Fixed-width UTC text: string order is time order in the due index.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class WatchStore:
    """Outbox, delivery log, image namespace index and rematch state in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc}") from exc
        with self._transaction("create the watch store") as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    # ---- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        existing: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if existing is not None:
            return existing
        try:
            created = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            created.execute("PRAGMA journal_mode=WAL")
            created.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        with self._lock:
            self._connections.append(created)
        self._local.connection = created
        return created

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {action} ({self.path}): {exc}") from exc

    def _query(self, action: str, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._connection().execute(sql, tuple(params)).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {action} ({self.path}): {exc}") from exc

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    # ---- the Outbox port --------------------------------------------------------------------

    def register(self, notification: Notification, now: datetime) -> bool:
        with self._transaction("register a notification") as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO notifications VALUES (?, ?, ?, ?, ?)",
                (
                    notification.notification_id,
                    notification.account,
                    notification.notification_type.value,
                    notification.model_dump_json(),
                    _ts(now),
                ),
            )
            return cursor.rowcount == 1

    def enqueue(self, notification: Notification, channel: str, target: str, now: datetime) -> bool:
        with self._transaction("enqueue a delivery") as connection:
            connection.execute(
                "INSERT OR IGNORE INTO notifications VALUES (?, ?, ?, ?, ?)",
                (
                    notification.notification_id,
                    notification.account,
                    notification.notification_type.value,
                    notification.model_dump_json(),
                    _ts(now),
                ),
            )
            cursor = connection.execute(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, 0, ?, ?, NULL)",
                (notification.notification_id, channel, target, _DUE, _ts(now), _ts(now)),
            )
            return cursor.rowcount == 1

    def claim_due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        with self._transaction("claim due deliveries") as connection:
            rows = connection.execute(
                "UPDATE deliveries SET state = ?, claimed_at = ? WHERE rowid IN ("
                " SELECT rowid FROM deliveries WHERE state = ? AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at LIMIT ?)"
                " RETURNING notification_id, channel, target, attempts, enqueued_at, next_attempt_at",
                (_CLAIMED, _ts(now), _DUE, _ts(now), limit),
            ).fetchall()
            documents: dict[str, str] = {}
            if rows:
                placeholders = ",".join("?" * len(rows))
                select = f"SELECT notification_id, document FROM notifications WHERE notification_id IN ({placeholders})"  # noqa: S608, E501 - placeholders only
                documents = dict(connection.execute(select, [row[0] for row in rows]).fetchall())
        return [
            OutboxItem(
                notification=Notification.model_validate_json(documents[notification_id]),
                channel=channel,
                target=target,
                attempts=attempts,
                enqueued_at=_from_ts(enqueued_at),
                next_attempt_at=_from_ts(next_attempt_at),
            )
            for notification_id, channel, target, attempts, enqueued_at, next_attempt_at in rows
        ]

    def record(self, item: OutboxItem, attempt: DeliveryAttempt) -> None:
        if attempt.outcome is DeliveryOutcome.RETRYING:
            state, next_at = _DUE, attempt.next_attempt_at or attempt.attempted_at
        elif attempt.outcome is DeliveryOutcome.DELIVERED:
            state, next_at = _DELIVERED, attempt.attempted_at
        else:
            state, next_at = _FAILED, attempt.attempted_at
        with self._transaction("record a delivery attempt") as connection:
            connection.execute(
                "INSERT INTO delivery_log (notification_id, account, document) VALUES (?, ?, ?)",
                (attempt.notification_id, attempt.account, attempt.model_dump_json()),
            )
            connection.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, claimed_at = NULL"
                " WHERE notification_id = ? AND channel = ? AND target = ?",
                (
                    state,
                    attempt.attempt,
                    _ts(next_at),
                    item.notification.notification_id,
                    item.channel,
                    item.target,
                ),
            )

    def release_claims(self, claimed_before: datetime) -> int:
        with self._transaction("release stale claims") as connection:
            return connection.execute(
                "UPDATE deliveries SET state = ?, claimed_at = NULL WHERE state = ? AND claimed_at < ?",
                (_DUE, _CLAIMED, _ts(claimed_before)),
            ).rowcount

    def attempts(
        self, *, notification_id: str | None = None, account: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        clauses, params = [], []
        if notification_id is not None:
            clauses.append("notification_id = ?")
            params.append(notification_id)
        if account is not None:
            clauses.append("account = ?")
            params.append(account)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "read the delivery log",
            f"SELECT document FROM delivery_log{where} ORDER BY seq DESC LIMIT ?",  # noqa: S608 - fixed clauses
            (*params, limit),
        )
        return [DeliveryAttempt.model_validate_json(row[0]) for row in rows]

    def pending(self) -> int:
        rows = self._query(
            "count pending deliveries",
            "SELECT count(*) FROM deliveries WHERE state IN (?, ?)",
            (_DUE, _CLAIMED),
        )
        return int(rows[0][0])

    def undelivered(self, notification_id: str) -> int:
        rows = self._query(
            "count undelivered",
            "SELECT count(*) FROM deliveries WHERE notification_id = ? AND state IN (?, ?)",
            (notification_id, _DUE, _CLAIMED),
        )
        return int(rows[0][0])

    def delivery_states(self, notification_id: str) -> dict[str, str]:
        """``channel:target`` -> state of each delivery of one notification."""
        rows = self._query(
            "read deliveries",
            "SELECT channel, target, state FROM deliveries WHERE notification_id = ?",
            (notification_id,),
        )
        return {f"{channel}:{target}": state for channel, target, state in rows}

    # ---- the image namespace index ----------------------------------------------------------

    def set_image_namespaces(
        self, account: str, image_digest: str, namespaces: Iterable[str], *, has_matches: bool
    ) -> None:
        with self._transaction("index an image's namespaces") as connection:
            connection.execute(
                "DELETE FROM image_namespaces WHERE account = ? AND image_digest = ?", (account, image_digest)
            )
            connection.executemany(
                "INSERT INTO image_namespaces VALUES (?, ?, ?)",
                [(account, image_digest, namespace) for namespace in sorted(set(namespaces))],
            )
            connection.execute(
                "INSERT OR REPLACE INTO indexed_images VALUES (?, ?, ?)",
                (account, image_digest, int(has_matches)),
            )

    def indexed_images(self, account: str) -> set[str]:
        rows = self._query(
            "read the image index", "SELECT image_digest FROM indexed_images WHERE account = ?", (account,)
        )
        return {row[0] for row in rows}

    def images_in_namespaces(self, account: str, namespaces: Iterable[str]) -> set[str]:
        wanted = sorted(set(namespaces))
        if not wanted:
            return set()
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._query(
                "query the image index",
                f"SELECT DISTINCT image_digest FROM image_namespaces WHERE account = ? AND namespace IN ({','.join('?' * len(chunk))})",  # noqa: S608, E501 - placeholders only
                (account, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    def images_with_matches(self, account: str) -> set[str]:
        rows = self._query(
            "query the image index",
            "SELECT image_digest FROM indexed_images WHERE account = ? AND has_matches = 1",
            (account,),
        )
        return {row[0] for row in rows}

    # ---- small state --------------------------------------------------------------------------

    def get_state(self, key: str) -> Any:
        rows = self._query("read watch state", "SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def put_state(self, key: str, value: Any) -> None:
        with self._transaction("write watch state") as connection:
            connection.execute(
                "INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
            )
