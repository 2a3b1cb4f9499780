"""The database file's layout: schema version, tables, indexes, page size, and how a file is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# 2: the fields a match reports (aliases, summary, description, CVSS, URLs, publication date) have their
# own columns, so reading a matched record decodes only those; 16 KiB pages.
# 3: affected rows carry a range plan (constraint text, bound validity, bound sort keys: see
# ``versions.range_plans``), and the metadata the sort-key fingerprint the plans were made with.
SCHEMA_VERSION = 3

# Tables whose rows belong to one feed; carry-over copies them feed by feed.
FEED_TABLES = ("vulnerabilities", "affected", "nvd", "kev", "epss")

SCHEMA = """
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
LOOKUP_INDEX = "CREATE INDEX affected_lookup ON affected (namespace, package_name)"

# Larger pages than SQLite's 4 KiB default: most advisories then fit in one page with their
# description, and a lookup walks a shallower tree (the file is read far more than written).
PAGE_SIZE = 16384

_MIN_MMAP_SIZE = 1 << 20


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection to ``path``: read-only for a published file, writable for a build."""
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
