"""Writers for rpm databases, for tests: rpm header blobs, ndb ``Packages.db``, Berkeley DB ``Packages``
and ``rpmdb.sqlite``. They produce the on-disk layouts the readers must understand (and, mutated, the
corrupt ones they must reject); images built by the tests carry their output as their rpm database.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

from portwarden.core.analyzers.rpmdb import header as tags


def build_header(entries: list[tuple[int, int, Any]], with_region: bool = True) -> bytes:
    """An rpm header blob (big-endian index + data store) holding ``entries`` (tag, type, value)."""
    index: list[bytes] = []
    store = bytearray()
    alignment = {tags.TYPE_INT16: 2, tags.TYPE_INT32: 4, tags.TYPE_INT64: 8}
    for tag, kind, value in entries:
        while len(store) % alignment.get(kind, 1):
            store.append(0)
        offset = len(store)
        if kind == tags.TYPE_STRING:
            store += value.encode() + b"\x00"
            count = 1
        elif kind in (tags.TYPE_STRING_ARRAY, tags.TYPE_I18NSTRING):
            for item in value:
                store += item.encode() + b"\x00"
            count = len(value)
        elif kind == tags.TYPE_BIN:
            store += value
            count = len(value)
        else:
            code = {tags.TYPE_INT16: "H", tags.TYPE_INT32: "I", tags.TYPE_INT64: "Q"}[kind]
            store += struct.pack(f">{len(value)}{code}", *value)
            count = len(value)
        index.append(struct.pack(">iIiI", tag, kind, offset, count))
    if with_region:
        # rpm headers open with an immutable-region tag whose trailer sits at the end of the store;
        # readers must step over it.
        trailer_offset = len(store)
        store += struct.pack(">iIiI", 63, tags.TYPE_BIN, -(len(index) + 1) * 16, 16)
        index.insert(0, struct.pack(">iIiI", 63, tags.TYPE_BIN, trailer_offset, 16))
    return struct.pack(">II", len(index), len(store)) + b"".join(index) + bytes(store)


def package_header(
    name: str,
    version: str,
    release: str,
    *,
    epoch: int | None = None,
    arch: str = "x86_64",
    license_name: str = "MIT",
    source_rpm: str | None = "",
    files: list[str] | None = None,
    modularity_label: str | None = None,
    vendor: str | None = None,
) -> bytes:
    entries: list[tuple[int, int, Any]] = [
        (tags.TAG_NAME, tags.TYPE_STRING, name),
        (tags.TAG_VERSION, tags.TYPE_STRING, version),
        (tags.TAG_RELEASE, tags.TYPE_STRING, release),
        (tags.TAG_SUMMARY, tags.TYPE_I18NSTRING, [f"the {name} package"]),
        (tags.TAG_SIZE, tags.TYPE_INT32, [4096]),
        (tags.TAG_LICENSE, tags.TYPE_STRING, license_name),
        (tags.TAG_ARCH, tags.TYPE_STRING, arch),
        (tags.TAG_PROVIDENAME, tags.TYPE_STRING_ARRAY, [name, f"{name}(x86-64)"]),
    ]
    if epoch is not None:
        entries.append((tags.TAG_EPOCH, tags.TYPE_INT32, [epoch]))
    if modularity_label is not None:
        entries.append((tags.TAG_MODULARITYLABEL, tags.TYPE_STRING, modularity_label))
    if vendor is not None:
        entries.append((tags.TAG_VENDOR, tags.TYPE_STRING, vendor))
    if source_rpm is not None:
        entries.append(
            (tags.TAG_SOURCERPM, tags.TYPE_STRING, source_rpm or f"{name}-{version}-{release}.src.rpm")
        )
    if files:
        directories = sorted({os.path.dirname(f) + "/" for f in files})
        entries += [
            (
                tags.TAG_DIRINDEXES,
                tags.TYPE_INT32,
                [directories.index(os.path.dirname(f) + "/") for f in files],
            ),
            (tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, [os.path.basename(f) for f in files]),
            (tags.TAG_DIRNAMES, tags.TYPE_STRING_ARRAY, directories),
            (tags.TAG_FILEMODES, tags.TYPE_INT16, [0o100644] * len(files)),
            (tags.TAG_FILESIZES, tags.TYPE_INT32, [10] * len(files)),
            (tags.TAG_FILEDIGESTS, tags.TYPE_STRING_ARRAY, ["ab" * 32] * len(files)),
            (tags.TAG_FILEDIGESTALGO, tags.TYPE_INT32, [8]),
        ]
    return build_header(entries)


def build_ndb(blobs: list[bytes | None], slot_pages: int = 1) -> bytes:
    """An ndb ``Packages.db``; a None entry leaves a free slot."""
    slots = bytearray()
    area = bytearray()
    block = slot_pages * 4096 // 16
    for package_index, blob in enumerate(blobs, start=1):
        if blob is None:
            slots += struct.pack("<4sIII", b"Slot", 0, 0, 0)
            continue
        blocks = (16 + len(blob) + 12 + 15) // 16
        body = struct.pack("<4sIII", b"BlbS", package_index, 1700000000, len(blob)) + blob
        body += b"\x00" * (blocks * 16 - 12 - len(body))
        area += body + struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        slots += struct.pack("<4sIII", b"Slot", package_index, block, blocks)
        block += blocks
    free_slots = (slot_pages * 4096 - 32) // 16 - len(blobs)
    slots += struct.pack("<4sIII", b"Slot", 0, 0, 0) * free_slots
    header = struct.pack("<4sIIII", b"RpmP", 0, 7, slot_pages, len(blobs) + 1) + b"\x00" * 12
    return header + bytes(slots) + bytes(area)


def build_bdb(
    values: list[bytes], page_size: int = 4096, byte_order: str = "<", inline: bool = False
) -> bytes:
    """A Berkeley DB hash file: metadata page, hash pages of (key, value) pairs where each value is an
    off-page reference to an overflow chain or, with ``inline``, stored on the hash page itself."""
    pairs_per_page = max(1, (page_size - 26) // (2 * 2 + 5 + 12) - 1)
    hash_page_count = max(1, -(-len(values) // pairs_per_page))
    next_page = 1 + hash_page_count
    hash_pages: list[bytes] = []
    overflow_pages: list[bytes] = []
    for first in range(0, max(len(values), 1), pairs_per_page):
        chunk = values[first : first + pairs_per_page]
        items: list[bytes] = []
        for number, value in enumerate(chunk, start=first + 1):
            items.append(b"\x01" + struct.pack(f"{byte_order}I", number))
            if inline:
                items.append(b"\x01" + value)
                continue
            items.append(b"\x03\x00\x00\x00" + struct.pack(f"{byte_order}II", next_page, len(value)))
            capacity = page_size - 26
            pieces = [value[i : i + capacity] for i in range(0, len(value), capacity)]
            for position, piece in enumerate(pieces):
                following = next_page + 1 if position + 1 < len(pieces) else 0
                page = bytearray(page_size)
                struct.pack_into(f"{byte_order}IIIHH", page, 8, next_page, 0, following, 1, len(piece))
                page[25] = 7
                page[26 : 26 + len(piece)] = piece
                overflow_pages.append(bytes(page))
                next_page += 1
        page = bytearray(page_size)
        struct.pack_into(f"{byte_order}IIIHH", page, 8, 1 + len(hash_pages), 0, 0, len(items), 0)
        page[25] = 13
        end = page_size
        for position, item in enumerate(items):
            end -= len(item)
            page[end : end + len(item)] = item
            struct.pack_into(f"{byte_order}H", page, 26 + 2 * position, end)
        hash_pages.append(bytes(page))
    meta = bytearray(page_size)
    struct.pack_into(f"{byte_order}IIII", meta, 12, 0x061561, 9, page_size, 0)
    meta[25] = 8
    struct.pack_into(f"{byte_order}I", meta, 32, next_page - 1)
    return bytes(meta) + b"".join(hash_pages) + b"".join(overflow_pages)


def build_sqlite(tmp_path: Path, blobs: list[Any]) -> bytes:
    """An rpmdb.sqlite as rpm leaves it: the Packages table, in WAL mode, checkpointed."""
    path = tmp_path / "rpmdb.sqlite"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(blob,) for blob in blobs])
    connection.commit()
    connection.close()
    return path.read_bytes()
