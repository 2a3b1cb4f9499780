"""Berkeley DB hash databases, as rpm < 4.16 writes ``/var/lib/rpm/Packages`` (RHEL/CentOS <= 8,
Amazon Linux 2).

Page 0 is the hash metadata page (magic, page size, last page number). Every other page starts with
a 26-byte header (``lsn``, ``pgno``, ``prev_pgno``, ``next_pgno``, ``entries``, ``hf_offset``,
``level``, ``type``). Hash pages hold an array of item offsets after that header, in key/value
pairs; items are either inline (``H_KEYDATA``) or, as for every rpm header of any size, a reference to
a chain of overflow pages (``H_OFFPAGE``: first page number and total length). An overflow page keeps
its payload length in ``hf_offset`` and links to the next one through ``next_pgno``.

The database is read as a flat list of pages; the hash function is never needed because every value
is wanted. Each page number, item offset and chain length is checked, and a chain may visit a page
only once, so a corrupt file cannot loop or claim more memory than it occupies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from portwarden.core.errors import CorruptPackageDatabaseError

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
PAGE_HEADER_SIZE = 26
META_MIN_SIZE = 512

PAGE_HASH_UNSORTED = 2
PAGE_OVERFLOW = 7
PAGE_HASH = 13
HASH_PAGE_TYPES = frozenset({PAGE_HASH_UNSORTED, PAGE_HASH})

ITEM_KEYDATA = 1
ITEM_DUPLICATE = 2
ITEM_OFFPAGE = 3
ITEM_OFFDUP = 4

# The largest value rpm can store: a header at rpm's own tag and data limits.
MAX_VALUE_BYTES = 8 + 16 * 0xFFFF + 0x0FFFFFFF
# rpm's instance counter lives under key 0; it is not a package.
_COUNTER_KEY = b"\x00\x00\x00\x00"


def _byte_order(data: bytes) -> str:
    for order in ("<", ">"):
        magic = struct.unpack_from(f"{order}I", data, 12)[0]
        if magic == HASH_MAGIC:
            return order
        if magic == BTREE_MAGIC:
            raise CorruptPackageDatabaseError("Berkeley DB btree databases are not rpm Packages databases")
    raise CorruptPackageDatabaseError("not a Berkeley DB hash database (bad magic number)")


def _item_bounds(
    offsets: tuple[int, ...], position: int, index_end: int, page_size: int, page_number: int
) -> tuple[int, int]:
    """Start and end of item ``position`` of a hash page: items grow down from the end of the page, so
    an item ends where the previous one starts."""
    start = offsets[position]
    end = page_size if position == 0 else offsets[position - 1]
    if not index_end <= start < end <= page_size:
        raise CorruptPackageDatabaseError(f"page {page_number} item {position} has bad bounds {start}..{end}")
    return start, end


def read_bdb_hash_values(data: bytes, warnings: list[str]) -> Iterator[bytes]:
    """Every value of a Berkeley DB hash database, in page order.

    A problem confined to one item (a broken overflow chain, an unsupported item type) is appended
    to ``warnings`` and that item skipped; a broken metadata page or a truncated file raises.
    """
    if len(data) < META_MIN_SIZE:
        raise CorruptPackageDatabaseError(
            f"Berkeley DB file is {len(data)} bytes, smaller than a metadata page"
        )
    order = _byte_order(data)
    u16 = struct.Struct(f"{order}H")
    u32 = struct.Struct(f"{order}I")
    page_size = u32.unpack_from(data, 20)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise CorruptPackageDatabaseError(
            f"Berkeley DB page size {page_size} is not a power of two in 512..65536"
        )
    if data[24] != 0:
        raise CorruptPackageDatabaseError("the Berkeley DB database is encrypted")
    last_page = u32.unpack_from(data, 32)[0]
    page_count = len(data) // page_size
    if last_page >= page_count:
        raise CorruptPackageDatabaseError(
            f"Berkeley DB file is truncated: its metadata names page {last_page}"
            f" but it holds {page_count} pages"
        )

    # Pages are views into ``data``: a large database is walked without copying it page by page.
    view = memoryview(data)

    def page_at(number: int) -> memoryview:
        start = number * page_size
        return view[start : start + page_size]

    def overflow_value(first_page: int, total_length: int) -> bytes:
        if total_length > MAX_VALUE_BYTES:
            raise CorruptPackageDatabaseError(f"overflow item claims {total_length} bytes")
        chunks: list[memoryview] = []
        remaining = total_length
        number = first_page
        visited: set[int] = set()
        while remaining > 0:
            if number == 0 or number > last_page:
                raise CorruptPackageDatabaseError(f"overflow chain points at page {number}, outside the file")
            if number in visited:
                raise CorruptPackageDatabaseError(f"overflow chain loops back to page {number}")
            visited.add(number)
            page = page_at(number)
            if page[25] != PAGE_OVERFLOW:
                raise CorruptPackageDatabaseError(f"overflow chain reaches page {number} of type {page[25]}")
            length = u16.unpack_from(page, 22)[0]
            if length > page_size - PAGE_HEADER_SIZE or length > remaining:
                raise CorruptPackageDatabaseError(f"overflow page {number} claims {length} bytes")
            if length == 0:
                raise CorruptPackageDatabaseError(f"overflow page {number} is empty before the value ends")
            chunks.append(page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + length])
            remaining -= length
            number = u32.unpack_from(page, 16)[0]
        return b"".join(chunks)

    for number in range(1, last_page + 1):
        page = page_at(number)
        if page[25] not in HASH_PAGE_TYPES:
            continue
        entries = u16.unpack_from(page, 20)[0]
        index_end = PAGE_HEADER_SIZE + 2 * entries
        if index_end > page_size:
            warnings.append(
                f"Berkeley DB page {number} claims {entries} entries, more than fit; page skipped"
            )
            continue
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER_SIZE)

        for position in range(0, entries - 1, 2):
            try:
                key_start, key_end = _item_bounds(offsets, position, index_end, page_size, number)
                if page[key_start] == ITEM_KEYDATA and page[key_start + 1 : key_end] == _COUNTER_KEY:
                    continue
                value_start, value_end = _item_bounds(offsets, position + 1, index_end, page_size, number)
                item_type = page[value_start]
                if item_type == ITEM_OFFPAGE:
                    if value_end - value_start < 12:
                        raise CorruptPackageDatabaseError(
                            f"page {number} item {position + 1} is a short off-page item"
                        )
                    first_page = u32.unpack_from(page, value_start + 4)[0]
                    total_length = u32.unpack_from(page, value_start + 8)[0]
                    yield overflow_value(first_page, total_length)
                elif item_type == ITEM_KEYDATA:
                    yield bytes(page[value_start + 1 : value_end])
                else:
                    raise CorruptPackageDatabaseError(
                        f"page {number} item {position + 1} has unsupported item type {item_type}"
                    )
            except CorruptPackageDatabaseError as exc:
                warnings.append(f"Berkeley DB record skipped: {exc}")
        if entries % 2:
            warnings.append(
                f"Berkeley DB page {number} has an odd number of entries; the last one was ignored"
            )
