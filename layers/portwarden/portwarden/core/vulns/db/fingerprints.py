"""What a database build changed: a fingerprint per namespace, compared between two builds.

A rematch after a feed sync only needs the images with packages in the namespaces whose data changed.
Each build records, per namespace, a fingerprint of every row a match can depend on (the advisory and
its affected-package rows); the enrichment tables a match reads by CVE id (NVD severities and CVSS,
KEV) get one fingerprint each under ``@nvd`` and ``@kev``. EPSS scores move every day for every CVE:
they are refreshed with the next rematch of an image for other reasons, never a reason for one.

The fingerprint is a sum of per-row hashes (order-independent: one pass over each table, no sort), with
the row count.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping

from portwarden.core.model.base import ValueObject

NVD_GROUP = "@nvd"
KEV_GROUP = "@kev"
ENRICHMENT_GROUPS = (NVD_GROUP, KEV_GROUP)
_MODULUS = 1 << 128

_QUERIES = (
    (
        "SELECT namespace, feed, id, severity, severity_source, withdrawn, aliases, summary, cvss, urls,"
        " published, document FROM vulnerabilities"
    ),
    (
        "SELECT namespace, feed, vuln_id, package_name, version_format, fix_state, fix_versions, ranges,"
        " versions, severity, note FROM affected"
    ),
    f"SELECT '{NVD_GROUP}', cve_id, feed, severity, cvss, description, last_modified FROM nvd",  # noqa: S608
    f"SELECT '{KEV_GROUP}', cve_id, feed, document FROM kev",  # noqa: S608
)


def compute_fingerprints(connection: sqlite3.Connection, schema: str = "main") -> dict[str, str]:
    """``namespace -> "<rows>:<hex>"`` over the tables of ``schema`` on ``connection``."""
    sums: dict[str, int] = {}
    counts: dict[str, int] = {}
    blake2b = hashlib.blake2b
    for query in _QUERIES:
        sql = query.replace(" FROM ", f" FROM {schema}.", 1)
        for row in connection.execute(sql):
            group = row[0]
            value = int.from_bytes(blake2b(repr(row).encode(), digest_size=16).digest(), "big")
            sums[group] = (sums.get(group, 0) + value) % _MODULUS
            counts[group] = counts.get(group, 0) + 1
    return {group: f"{counts[group]}:{sums[group]:032x}" for group in sorted(sums)}


class FeedChange(ValueObject):
    """What changed between two builds. ``everything`` when the previous build is unknown or has no
    fingerprints (built by an older Portwarden): then every analyzed image is re-matched."""

    namespaces: frozenset[str] = frozenset()
    enrichment: bool = False
    everything: bool = False

    @property
    def changed(self) -> bool:
        return self.everything or self.enrichment or bool(self.namespaces)


def feed_change(previous: Mapping[str, str] | None, current: Mapping[str, str]) -> FeedChange:
    if previous is None or (not previous and current):
        return FeedChange(everything=True)
    groups = set(previous) | set(current)
    changed = {group for group in groups if previous.get(group) != current.get(group)}
    return FeedChange(
        namespaces=frozenset(group for group in changed if not group.startswith("@")),
        enrichment=any(group in ENRICHMENT_GROUPS for group in changed),
    )
