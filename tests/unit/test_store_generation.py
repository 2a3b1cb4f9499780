"""The store generation read without a query while nothing was committed (``LocalStore.generation``).

`portwarden serve` reads the generation on every request to decide whether a cached answer is still
the store's; these tests hold it to being exact — every commit, by this process or another, seen by
the next read — while an unchanged store is answered from SQLite's wal-index header alone.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import DATABASE_FILE, LocalStore


def truth(home: Path) -> int:
    """The generation as a fresh connection reads it."""
    connection = sqlite3.connect(home / DATABASE_FILE)
    try:
        return int(connection.execute("SELECT generation FROM store_generation").fetchone()[0])
    finally:
        connection.close()


def bump(connection: sqlite3.Connection) -> None:
    # What the triggers of every tracked table do on a committed write.
    connection.execute("UPDATE store_generation SET generation = generation + 1 WHERE singleton = 1")


# Another process committing: ``python -c BUMPS DATABASE COUNT`` moves the generation COUNT times.
BUMPS = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    c.execute('UPDATE store_generation SET generation = generation + 1 WHERE singleton = 1')\n"
    "c.close()\n"
)


def counting_queries(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    queries: list[str] = []
    original = store._db.fetch_one

    def fetch_one(action: str, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        queries.append(sql)
        return original(action, sql, parameters)

    monkeypatch.setattr(store._db, "fetch_one", fetch_one)
    return queries


def test_an_unchanged_store_is_answered_without_a_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalStore(tmp_path / "home") as store:
        first = store.generation()
        queries = counting_queries(store, monkeypatch)
        assert all(store.generation() == first for _ in range(1000))
        assert len(queries) <= 1


def test_every_commit_by_another_connection_is_seen_by_the_next_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LocalStore(home) as store:
        store.generation()
        writer = sqlite3.connect(home / DATABASE_FILE, isolation_level=None)
        try:
            for _ in range(300):
                bump(writer)
                assert store.generation() == truth(home)
                # A write that changes no row commits nothing: the answer stays, and stays right.
                writer.execute("UPDATE store_generation SET generation = generation WHERE singleton = 0")
                assert store.generation() == truth(home)
        finally:
            writer.close()


def test_a_commit_by_another_process_is_seen_by_the_next_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LocalStore(home) as store:
        before = store.generation()
        for round_ in range(1, 4):
            subprocess.run(
                [sys.executable, "-c", BUMPS, str(home / DATABASE_FILE), "3"], check=True, timeout=60
            )
            assert store.generation() == before + 3 * round_ == truth(home)


def test_without_the_header_every_read_queries_and_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    with LocalStore(home) as store:
        monkeypatch.setattr(store._db._wal_header, "token", lambda: None)
        queries = counting_queries(store, monkeypatch)
        writer = sqlite3.connect(home / DATABASE_FILE, isolation_level=None)
        try:
            for _ in range(20):
                bump(writer)
                assert store.generation() == truth(home)
        finally:
            writer.close()
        assert len(queries) == 20


def test_a_closed_store_refuses_instead_of_reading_a_released_mapping(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    store.generation()
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.generation()


def test_threads_reading_while_another_process_commits_never_go_back_and_end_exact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    commits = 400
    with LocalStore(home) as store:
        store.generation()
        failures: list[str] = []
        reads = [0]
        writer = subprocess.Popen(
            [sys.executable, "-c", BUMPS, str(home / DATABASE_FILE), str(commits)],
        )

        def reader() -> None:
            last = -1
            while writer.poll() is None:
                value = store.generation()
                reads[0] += 1
                if value < last:
                    failures.append(f"went back from {last} to {value}")
                    return
                last = value

        readers = [threading.Thread(target=reader) for _ in range(8)]
        for thread in readers:
            thread.start()
        try:
            assert writer.wait(timeout=120) == 0
        finally:
            writer.kill()
            for thread in readers:
                thread.join(timeout=30)
        assert failures == []
        assert reads[0] > 0
        assert store.generation() == truth(home) == commits
