"""Reading a published database: :class:`VulnerabilityDb`, opened read-only.

The file is opened ``immutable``: it never changes once published, which also lets several processes
or Lambda invocations share it without locking. Queries are what the matcher and ``feeds list`` need.

A damaged file (a disk fault, a copy cut short) can fail at any query, not only when it is opened:
every query turns SQLite's "database disk image is malformed" into a ``DamagedDatabaseError`` that
names the file, and an open that fails runs SQLite's own integrity check to say what is wrong.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.vulnerability import CvssScore, KevEntry, Severity
from portwarden.core.vulns.db.codecs import (
    AFFECTED_SELECT,
    VULNERABILITY_SELECT,
    AffectedRow,
    NvdRow,
    VulnerabilityRow,
    decode_json,
    vulnerability_row,
)
from portwarden.core.vulns.db.schema import SCHEMA_VERSION, connect
from portwarden.core.vulns.db.state import DbMetadata, GroupInfo, SourceState
from portwarden.core.vulns.versions.range_plans import sort_key_fingerprint

# Package names whose rows an opened database keeps in memory (a few MB at most).
_ROW_CACHE_NAMES = 50_000
# Problems the integrity check lists at most (one damaged page can produce thousands of lines).
_INTEGRITY_PROBLEMS = 5

REBUILD_HINT = "a feed sync rebuilds it"


class DamagedDatabaseError(VulnerabilityDatabaseError):
    """The file is a vulnerability database whose pages are damaged."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"the vulnerability database {path} is damaged ({detail}); {REBUILD_HINT}")


def integrity_problem(path: Path) -> str | None:
    """What SQLite's quick integrity check finds wrong with ``path``, or None when it finds nothing.

    It reads every page of the file (seconds for a large database): run it when something already
    failed, or before trusting a file a new build copies from.
    """
    try:
        connection = connect(path, read_only=True)
        try:
            rows = connection.execute(f"PRAGMA quick_check({_INTEGRITY_PROBLEMS})").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    return "; ".join(problems) if problems else None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _names_damage(
    query: Callable[Concatenate[VulnerabilityDb, _P], _R],
) -> Callable[Concatenate[VulnerabilityDb, _P], _R]:
    """SQLite errors of a query become a ``DamagedDatabaseError`` naming the file."""

    @functools.wraps(query)
    def guarded(self: VulnerabilityDb, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return query(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabaseError(self.path, str(exc)) from exc

    return guarded


class VulnerabilityDb:
    """A published database, opened read-only. Queries are what the matcher and ``feeds list`` need."""

    def __init__(self, path: Path, connection: sqlite3.Connection, *, sort_keys: str | None) -> None:
        self.path = path
        self._db = connection
        self._metadata: DbMetadata | None = None
        self._vulnerability = lru_cache(maxsize=65536)(self._load_vulnerability)
        self._records: dict[tuple[str, str, str], VulnerabilityRow] = {}
        self._rows_by_name: dict[tuple[str, str], tuple[AffectedRow, ...]] = {}
        # Range plans hold sort keys: only keys made by the same key code as this process's are usable.
        self.plans_usable = sort_keys == sort_key_fingerprint()

    @classmethod
    def open(cls, path: Path) -> VulnerabilityDb:
        """Open ``path`` read-only; VulnerabilityDatabaseError if missing, unreadable or of another schema."""
        if not path.is_file():
            raise VulnerabilityDatabaseError(f"no vulnerability database at {path}")
        try:
            connection = connect(path, read_only=True)
        except sqlite3.Error as exc:
            raise VulnerabilityDatabaseError(
                f"{path} is not a readable vulnerability database: {exc}"
            ) from exc
        try:
            row = connection.execute("SELECT value FROM metadata WHERE key = 'schema_version'").fetchone()
            sort_keys = connection.execute("SELECT value FROM metadata WHERE key = 'sort_keys'").fetchone()
        except sqlite3.DatabaseError as exc:
            connection.close()
            if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
                raise VulnerabilityDatabaseError(f"{path} is not a vulnerability database: {exc}") from exc
            raise DamagedDatabaseError(path, integrity_problem(path) or str(exc)) from exc
        if row is None or row[0] != str(SCHEMA_VERSION):
            connection.close()
            found = row[0] if row else "none"
            raise VulnerabilityDatabaseError(
                f"{path} has schema version {found}, this version of Portwarden reads {SCHEMA_VERSION}"
            )
        return cls(path, connection, sort_keys=sort_keys[0] if sort_keys else None)

    def __enter__(self) -> VulnerabilityDb:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @_names_damage
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
                namespace_fingerprints=(
                    json.loads(values["namespace_fingerprints"])
                    if "namespace_fingerprints" in values
                    else None
                ),
            )
        return self._metadata

    def affected(self, namespace: str, package_names: Sequence[str]) -> list[AffectedRow]:
        """Affected rows of the given packages in ``namespace`` (names already normalized)."""
        by_name = self.affected_by_name(namespace, package_names)
        return [row for name in dict.fromkeys(package_names) for row in by_name.get(name, ())]

    @_names_damage
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
            query = AFFECTED_SELECT + f" WHERE namespace = ? AND package_name IN ({placeholders})"
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

    @_names_damage
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
                query = VULNERABILITY_SELECT + f" WHERE feed = ? AND id IN ({placeholders}) AND namespace = ?"
                for row in self._db.execute(query, (feed, *chunk, namespace)):
                    key = (feed, row[0], namespace)
                    found[key] = records[key] = vulnerability_row(feed, namespace, row)
        return found

    def _load_vulnerability(self, feed: str, vuln_id: str, namespace: str) -> VulnerabilityRow | None:
        return self.vulnerabilities([(feed, vuln_id, namespace)]).get((feed, vuln_id, namespace))

    @_names_damage
    def nvd(self, cve_ids: Sequence[str]) -> dict[str, NvdRow]:
        return {
            cve_id: NvdRow(
                cve_id=cve_id,
                severity=Severity(severity),
                cvss=tuple(CvssScore.model_validate(score) for score in decode_json(cvss)[0]),
            )
            for cve_id, severity, cvss in self._select_by_cve(
                "SELECT cve_id, severity, cvss FROM nvd", cve_ids
            )
        }

    @_names_damage
    def kev(self, cve_ids: Sequence[str]) -> set[str]:
        return {row[0] for row in self._select_by_cve("SELECT cve_id FROM kev", cve_ids)}

    @_names_damage
    def kev_entries(self, cve_ids: Sequence[str]) -> dict[str, KevEntry]:
        return {
            row[0]: KevEntry.model_validate_json(row[1])
            for row in self._select_by_cve("SELECT cve_id, document FROM kev", cve_ids)
        }

    @_names_damage
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

    @_names_damage
    def records(self, vuln_id: str) -> list[VulnerabilityRow]:
        """Every stored statement of ``vuln_id`` (all feeds and namespaces)."""
        keys = self._db.execute(
            "SELECT feed, namespace FROM vulnerabilities WHERE id = ? ORDER BY feed, namespace", (vuln_id,)
        ).fetchall()
        return [row for feed, namespace in keys if (row := self.vulnerability(feed, vuln_id, namespace))]

    @_names_damage
    def affected_of(self, vuln_id: str) -> list[AffectedRow]:
        """Every affected row of ``vuln_id`` (all feeds and namespaces), ordered by namespace and package.

        Read through the ``(feed, vuln_id)`` index, one query per feed that states the id.
        """
        feeds = [
            str(row[0])
            for row in self._db.execute(
                "SELECT DISTINCT feed FROM vulnerabilities WHERE id = ? ORDER BY feed", (vuln_id,)
            )
        ]
        rows: list[AffectedRow] = []
        for feed in feeds:
            rows.extend(
                AffectedRow._make(row)
                for row in self._db.execute(
                    AFFECTED_SELECT + " WHERE feed = ? AND vuln_id = ?", (feed, vuln_id)
                )
            )
        return sorted(rows, key=lambda row: (row.namespace, row.package_name, row.feed))

    @_names_damage
    def record_extras(self, feed: str, vuln_id: str, namespace: str) -> dict[str, Any]:
        """The stored fields of a record that matches do not report (``modified``, ``withdrawn``, ``cwes``),
        for explanations; empty when there is no such record."""
        row = self._db.execute(
            "SELECT document FROM vulnerabilities WHERE feed = ? AND id = ? AND namespace = ?",
            (feed, vuln_id, namespace),
        ).fetchone()
        document = decode_json(row[0])[0] if row else {}
        return document if isinstance(document, dict) else {}
