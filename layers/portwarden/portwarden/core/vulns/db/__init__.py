"""The vulnerability database: one immutable SQLite file per build.

One module per responsibility:

* :mod:`.schema`: the file's layout (schema version, tables, indexes) and how a file is opened;
* :mod:`.state`: what a database records about itself (feed sources, groups, build metadata);
* :mod:`.codecs`: records to rows and rows to values (the tuples the matcher reads);
* :mod:`.builder`: :class:`DbBuilder` writes a new file and publishes it by rename;
* :mod:`.reader`: :class:`VulnerabilityDb` opens a published file read-only and answers queries;
* :mod:`.lock`: one build of a database at a time, and the clean-up of builds a killed sync left.

Every location is passed in: the command line keeps the file under ``$PORTWARDEN_HOME/db/``, a Lambda
downloads the published snapshot to ``/tmp`` and opens it there.

Rows are keyed by the *feed* that produced them (``FeedSource.key``: kind and URL), so that one source
can be replaced, updated incrementally or carried over without touching the others.
"""

from portwarden.core.vulns.db.builder import DbBuilder
from portwarden.core.vulns.db.codecs import (
    FIX_STATES,
    AffectedRow,
    NvdRow,
    VulnerabilityRow,
    decode_cvss,
    decode_cvss_fields,
    decode_ranges,
    decode_strings,
)
from portwarden.core.vulns.db.reader import DamagedDatabaseError, VulnerabilityDb
from portwarden.core.vulns.db.schema import SCHEMA_VERSION
from portwarden.core.vulns.db.state import DbMetadata, FeedKind, GroupInfo, SourceState, SourceStatus

__all__ = [
    "FIX_STATES",
    "SCHEMA_VERSION",
    "AffectedRow",
    "DamagedDatabaseError",
    "DbBuilder",
    "DbMetadata",
    "FeedKind",
    "GroupInfo",
    "NvdRow",
    "SourceState",
    "SourceStatus",
    "VulnerabilityDb",
    "VulnerabilityRow",
    "decode_cvss",
    "decode_cvss_fields",
    "decode_ranges",
    "decode_strings",
]
