"""Executables for analyzer tests: ELF binaries around the payloads real linkers emit.

No Go or cargo-auditable toolchain is assumed: :func:`build_elf` lays out just enough of the format
(headers, a section table, one loadable data region) around the sections it is given, and
:func:`go_inline_buildinfo` is the ``.go.buildinfo`` section the Go >= 1.18 linker writes.
"""

from __future__ import annotations

import struct

from portwarden.core.analyzers.golang import BUILDINFO_MAGIC, MODINFO_END, MODINFO_START

ELF_BASE = 0x400000


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def go_inline_buildinfo(go_version: str, modinfo: str) -> bytes:
    """The Go >= 1.18 layout: 32-byte header, then varint-prefixed version and module strings."""
    module_blob = MODINFO_START + modinfo.encode() + MODINFO_END
    header = BUILDINFO_MAGIC + bytes([8, 0x2]) + bytes(16)
    return header + uvarint(len(go_version)) + go_version.encode() + uvarint(len(module_blob)) + module_blob


def elf_layout(sections: dict[str, bytes]) -> tuple[int, dict[str, int]]:
    """File offsets build_elf gives each section: after the headers, 16-byte aligned, in order."""
    data_start = 64 + 56
    data_start += -data_start % 16
    offsets, cursor = {}, data_start
    for name, content in sections.items():
        cursor += -cursor % 16
        offsets[name] = cursor
        cursor += len(content)
    return data_start, offsets


def build_elf(sections: dict[str, bytes], *, section_table: bool = True) -> bytes:
    """A little-endian ELF64 x86-64 executable: sections laid out in one writable PT_LOAD."""
    data_start, offsets = elf_layout(sections)
    body = bytearray()
    placed = []
    for name, content in sections.items():
        body += bytes(offsets[name] - data_start - len(body))
        placed.append((name, offsets[name], content))
        body += content
    names = b"\0" + b"".join(name.encode() + b"\0" for name in (*sections, ".shstrtab"))
    shstrtab_offset = data_start + len(body)
    table_offset = shstrtab_offset + len(names)
    table_offset += -table_offset % 8
    headers = [bytes(64)]
    name_offset = 1
    for name, offset, content in placed:
        headers.append(
            struct.pack(
                "<IIQQQQIIQQ", name_offset, 1, 0x3, ELF_BASE + offset, offset, len(content), 0, 0, 16, 0
            )
        )
        name_offset += len(name) + 1
    headers.append(struct.pack("<IIQQQQIIQQ", name_offset, 3, 0, 0, shstrtab_offset, len(names), 0, 0, 1, 0))
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    shnum = len(headers) if section_table else 0
    elf_header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        ident,
        2,
        62,
        1,
        0,
        64,
        table_offset if section_table else 0,
        0,
        64,
        56,
        1,
        64,
        shnum,
        shnum - 1 if section_table else 0,
    )
    load = struct.pack(
        "<IIQQQQQQ",
        1,
        0x6,
        data_start,
        ELF_BASE + data_start,
        ELF_BASE + data_start,
        len(body),
        len(body),
        0x1000,
    )
    image = bytearray(elf_header + load)
    image += bytes(data_start - len(image))
    image += body + names
    image += bytes(table_offset - len(image))
    if section_table:
        image += b"".join(headers)
    return bytes(image)
