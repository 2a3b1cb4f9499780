"""rpm's own "ndb" package database, ``Packages.db`` (SUSE/openSUSE).

All integers are little-endian. The file starts with slot pages (4096 bytes each): a 32-byte header
(``RpmP`` magic, version 0, generation, number of slot pages, next package index) followed by 16-byte
slots (``Slot`` magic, package index, block offset, block count; a zero block offset is a free slot).
Blocks are 16 bytes. A blob starts with a 16-byte head (``BlbS`` magic, package index, timestamp,
length), then the header blob, zero padding, and a 12-byte tail (adler32 of everything before it,
length, ``BlbE`` magic) that ends the slot's last block.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from portwarden.core.errors import CorruptPackageDatabaseError

DB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_HEAD_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"
DB_VERSION = 0
DB_HEADER_SIZE = 32
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
BLOB_HEAD_SIZE = 16
BLOB_TAIL_SIZE = 12

_HEADER = struct.Struct("<4sIIII")
_SLOT = struct.Struct("<4sIII")
_BLOB_HEAD = struct.Struct("<4sIII")
_BLOB_TAIL = struct.Struct("<II4s")


def read_ndb_blobs(data: bytes, warnings: list[str]) -> Iterator[bytes]:
    """Every package blob of an ndb ``Packages.db``, in slot order.

    The slot table is checked the way rpm checks it (a bad slot means the database cannot be trusted
    and raises); a blob whose head or tail does not match its slot is skipped with a warning.
    """
    if len(data) < DB_HEADER_SIZE:
        raise CorruptPackageDatabaseError(f"ndb file is {len(data)} bytes, smaller than its header")
    magic, version, _generation, slot_pages, _next_index = _HEADER.unpack_from(data, 0)
    if magic != DB_MAGIC:
        raise CorruptPackageDatabaseError("not an rpm ndb database (bad magic number)")
    if version != DB_VERSION:
        raise CorruptPackageDatabaseError(f"unsupported rpm ndb version {version}")
    if slot_pages == 0 or slot_pages * PAGE_SIZE > len(data):
        raise CorruptPackageDatabaseError(
            f"ndb header declares {slot_pages} slot pages but the file holds {len(data) // PAGE_SIZE} pages"
        )
    file_blocks = len(data) // BLOCK_SIZE
    first_blob_block = slot_pages * (PAGE_SIZE // BLOCK_SIZE)
    view = memoryview(data)

    for offset in range(DB_HEADER_SIZE, slot_pages * PAGE_SIZE, SLOT_SIZE):
        slot_magic, package_index, block_offset, block_count = _SLOT.unpack_from(data, offset)
        if slot_magic != SLOT_MAGIC:
            raise CorruptPackageDatabaseError(f"ndb slot at byte {offset} has a bad magic number")
        if block_offset == 0:
            continue  # free slot
        if package_index == 0 or block_count == 0 or block_offset < first_blob_block:
            raise CorruptPackageDatabaseError(f"ndb slot at byte {offset} is invalid")
        if block_offset + block_count > file_blocks:
            raise CorruptPackageDatabaseError(
                f"ndb file is truncated: package {package_index} ends past the end of the file"
            )
        start = block_offset * BLOCK_SIZE
        end = start + block_count * BLOCK_SIZE
        head_magic, head_index, _timestamp, length = _BLOB_HEAD.unpack_from(data, start)
        expected_blocks = (BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE + BLOCK_SIZE - 1) // BLOCK_SIZE
        if head_magic != BLOB_HEAD_MAGIC or head_index != package_index or expected_blocks != block_count:
            warnings.append(f"ndb package {package_index}: blob head does not match its slot; skipped")
            continue
        adler, tail_length, tail_magic = _BLOB_TAIL.unpack_from(data, end - BLOB_TAIL_SIZE)
        if tail_magic != BLOB_TAIL_MAGIC or tail_length != length:
            warnings.append(f"ndb package {package_index}: blob tail is damaged; skipped")
            continue
        # rpm itself only verifies the checksum when asked to; a mismatch is worth a warning, and the
        # header parser still validates the structure of what we hand it.
        if zlib.adler32(view[start : end - BLOB_TAIL_SIZE]) != adler:
            warnings.append(f"ndb package {package_index}: blob checksum mismatch")
        yield bytes(view[start + BLOB_HEAD_SIZE : start + BLOB_HEAD_SIZE + length])
