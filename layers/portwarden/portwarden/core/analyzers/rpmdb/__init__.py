"""Pure-Python readers for the three rpm database formats and the rpm header blobs they all store.

Nothing here runs rpm or links librpm: every format is parsed from bytes, with every count, offset
and length checked against the data it points into, so corrupt or hostile input raises
``CorruptPackageDatabaseError`` instead of hanging or allocating without bound.
"""

from portwarden.core.analyzers.rpmdb.bdb import read_bdb_hash_values
from portwarden.core.analyzers.rpmdb.header import RpmFile, RpmHeader, RpmPackageInfo, parse_header_blob
from portwarden.core.analyzers.rpmdb.ndb import read_ndb_blobs
from portwarden.core.analyzers.rpmdb.sqlite import read_sqlite_blobs

__all__ = [
    "RpmFile",
    "RpmHeader",
    "RpmPackageInfo",
    "parse_header_blob",
    "read_bdb_hash_values",
    "read_ndb_blobs",
    "read_sqlite_blobs",
]
