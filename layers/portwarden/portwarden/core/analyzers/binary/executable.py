"""Section and segment tables of ELF, Mach-O and PE files, read through a seekable stream.

Only headers and the tables they point to are read; section contents are fetched on demand with an
explicit size cap. Counts and sizes come from untrusted files, so each is checked against the file
size and a hard ceiling before anything is allocated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

ELF_MAGIC = b"\x7fELF"
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 4),
    b"\xce\xfa\xed\xfe": ("<", 4),
    b"\xfe\xed\xfa\xcf": (">", 8),
    b"\xcf\xfa\xed\xfe": ("<", 8),
}
PE_MAGIC = b"MZ"

MAX_SECTIONS = 4096
MAX_SEGMENTS = 1024
MAX_LOAD_COMMANDS_BYTES = 4 * 1024 * 1024
MAX_STRING_TABLE = 4 * 1024 * 1024

ELF_MACHINES = {
    3: "386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "amd64",
    183: "arm64",
    243: "riscv64",
}
MACHO_CPUS = {7: "386", 0x01000007: "amd64", 12: "arm", 0x0100000C: "arm64", 18: "ppc", 0x01000012: "ppc64"}
PE_MACHINES = {0x14C: "386", 0x8664: "amd64", 0x1C0: "arm", 0x1C4: "arm", 0xAA64: "arm64"}

SHT_NOBITS = 8
PT_LOAD = 1
PF_W = 0x2
PF_X = 0x1
PE_SCN_MEM_WRITE = 0x80000000


class BinaryFormatError(ValueError):
    """The file claims to be an executable but its headers are truncated or inconsistent."""


@dataclass(frozen=True)
class Section:
    name: str
    offset: int
    size: int
    address: int
    has_data: bool = True
    writable: bool = False
    segment: str = ""


@dataclass(frozen=True)
class Segment:
    """A loaded range: ``address`` in memory maps ``file_size`` bytes starting at ``offset``."""

    address: int
    offset: int
    file_size: int
    writable: bool = False
    executable: bool = False


@dataclass
class Executable:
    format: Literal["elf", "macho", "pe"]
    byte_order: Literal["<", ">"]
    pointer_size: int
    architecture: str
    file_size: int
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    def section(self, *names: str) -> Section | None:
        """The first section whose name is one of ``names``."""
        for section in self.sections:
            if section.name in names and section.has_data:
                return section
        return None

    def read_section(self, stream: BinaryIO, section: Section, limit: int) -> bytes:
        """At most ``limit`` bytes of a section's content (raises when the section is larger)."""
        if section.size > limit:
            raise BinaryFormatError(f"section {section.name} is {section.size} bytes (limit {limit})")
        return read_at(stream, section.offset, section.size, self.file_size)

    def address_to_offset(self, address: int) -> tuple[int, int] | None:
        """File offset of a virtual address and how many file-backed bytes follow it."""
        for segment in self.segments:
            if segment.address <= address < segment.address + segment.file_size:
                delta = address - segment.address
                return segment.offset + delta, segment.file_size - delta
        return None

    def read_address(self, stream: BinaryIO, address: int, length: int) -> bytes | None:
        located = self.address_to_offset(address)
        if located is None or located[1] < length:
            return None
        return read_at(stream, located[0], length, self.file_size)


def read_at(stream: BinaryIO, offset: int, length: int, file_size: int) -> bytes:
    if offset < 0 or length < 0 or offset + length > file_size:
        raise BinaryFormatError(f"read of {length} bytes at {offset} runs past the end of the file")
    stream.seek(offset)
    data = stream.read(length)
    if len(data) != length:
        raise BinaryFormatError(f"short read at {offset}: wanted {length}, got {len(data)}")
    return data


def looks_executable(head: bytes) -> bool:
    """True when the first bytes carry an ELF, Mach-O (thin) or PE signature."""
    return head[:4] == ELF_MAGIC or head[:4] in MACHO_MAGICS or head[:2] == PE_MAGIC


def parse_executable(stream: BinaryIO, file_size: int) -> Executable | None:
    """The tables of the executable in ``stream``; None when it is not ELF, Mach-O or PE."""
    head = read_at(stream, 0, min(64, file_size), file_size)
    try:
        if head[:4] == ELF_MAGIC:
            return _parse_elf(stream, file_size, head)
        if head[:4] in MACHO_MAGICS:
            return _parse_macho(stream, file_size, head)
        if head[:2] == PE_MAGIC and file_size >= 64:
            return _parse_pe(stream, file_size, head)
    except struct.error as exc:
        raise BinaryFormatError(f"truncated executable header: {exc}") from exc
    return None


# -- ELF ----------------------------------------------------------------------------------------
def _parse_elf(stream: BinaryIO, file_size: int, head: bytes) -> Executable:
    if len(head) < 52:
        raise BinaryFormatError("truncated ELF header")
    elf_class, data_encoding = head[4], head[5]
    if elf_class not in (1, 2) or data_encoding not in (1, 2):
        raise BinaryFormatError("unknown ELF class or byte order")
    order: Literal["<", ">"] = "<" if data_encoding == 1 else ">"
    is64 = elf_class == 2
    if is64:
        if len(head) < 64:
            raise BinaryFormatError("truncated ELF header")
        fields = struct.unpack_from(order + "HHIQQQIHHHHHH", head, 16)
    else:
        fields = struct.unpack_from(order + "HHIIIIIHHHHHH", head, 16)
    _type, machine, _version, _entry, phoff, shoff, _flags, _ehsize = fields[:8]
    phentsize, phnum, shentsize, shnum, shstrndx = fields[8:]
    executable = Executable(
        format="elf",
        byte_order=order,
        pointer_size=8 if is64 else 4,
        architecture=ELF_MACHINES.get(machine, f"elf-machine-{machine}"),
        file_size=file_size,
    )
    executable.segments = _elf_segments(stream, file_size, order, is64, phoff, phentsize, phnum)
    executable.sections = _elf_sections(stream, file_size, order, is64, shoff, shentsize, shnum, shstrndx)
    return executable


def _elf_segments(
    stream: BinaryIO, file_size: int, order: str, is64: bool, phoff: int, phentsize: int, phnum: int
) -> list[Segment]:
    entry_size = 56 if is64 else 32
    if phnum == 0 or phoff == 0:
        return []
    if phnum > MAX_SEGMENTS or phentsize < entry_size:
        raise BinaryFormatError("implausible ELF program header table")
    table = read_at(stream, phoff, phentsize * phnum, file_size)
    segments = []
    for index in range(phnum):
        base = index * phentsize
        if is64:
            p_type, p_flags, offset, vaddr, _paddr, filesz, _memsz, _align = struct.unpack_from(
                order + "IIQQQQQQ", table, base
            )
        else:
            p_type, offset, vaddr, _paddr, filesz, _memsz, p_flags, _align = struct.unpack_from(
                order + "IIIIIIII", table, base
            )
        if p_type == PT_LOAD:
            segments.append(
                Segment(
                    address=vaddr,
                    offset=offset,
                    file_size=min(filesz, max(0, file_size - offset)),
                    writable=bool(p_flags & PF_W),
                    executable=bool(p_flags & PF_X),
                )
            )
    return segments


def _elf_sections(
    stream: BinaryIO,
    file_size: int,
    order: str,
    is64: bool,
    shoff: int,
    shentsize: int,
    shnum: int,
    shstrndx: int,
) -> list[Section]:
    entry_size = 64 if is64 else 40
    if shnum == 0 or shoff == 0:
        return []
    if shnum > MAX_SECTIONS or shentsize < entry_size:
        raise BinaryFormatError("implausible ELF section header table")
    table = read_at(stream, shoff, shentsize * shnum, file_size)
    raw = []
    for index in range(shnum):
        base = index * shentsize
        if is64:
            name, sh_type, flags, addr, offset, size = struct.unpack_from(order + "IIQQQQ", table, base)
        else:
            name, sh_type, flags, addr, offset, size = struct.unpack_from(order + "IIIIII", table, base)
        raw.append((name, sh_type, flags, addr, offset, size))
    names = b""
    if 0 < shstrndx < shnum:
        _n, str_type, _f, _a, str_offset, str_size = raw[shstrndx]
        if str_type != SHT_NOBITS and str_size <= MAX_STRING_TABLE:
            names = read_at(stream, str_offset, str_size, file_size)
    sections = []
    for name_offset, sh_type, flags, addr, offset, size in raw:
        end = names.find(b"\0", name_offset) if name_offset < len(names) else -1
        name = names[name_offset:end].decode("latin-1") if end >= 0 else ""
        sections.append(
            Section(
                name=name,
                offset=offset,
                size=size,
                address=addr,
                has_data=sh_type != SHT_NOBITS and offset + size <= file_size,
                writable=bool(flags & 0x1),
            )
        )
    return sections


# -- Mach-O -------------------------------------------------------------------------------------
def _parse_macho(stream: BinaryIO, file_size: int, head: bytes) -> Executable:
    order, pointer_size = MACHO_MAGICS[head[:4]]
    header_size = 32 if pointer_size == 8 else 28
    if len(head) < header_size:
        raise BinaryFormatError("truncated Mach-O header")
    _magic, cputype, _sub, _filetype, ncmds, sizeofcmds, _flags = struct.unpack_from(
        order + "IiIIIII", head, 0
    )
    if sizeofcmds > MAX_LOAD_COMMANDS_BYTES or ncmds > MAX_SECTIONS:
        raise BinaryFormatError("implausible Mach-O load commands")
    commands = read_at(stream, header_size, sizeofcmds, file_size)
    executable = Executable(
        format="macho",
        byte_order="<" if order == "<" else ">",
        pointer_size=pointer_size,
        architecture=MACHO_CPUS.get(cputype & 0xFFFFFFFF, f"macho-cpu-{cputype}"),
        file_size=file_size,
    )
    position = 0
    for _ in range(ncmds):
        if position + 8 > len(commands):
            raise BinaryFormatError("truncated Mach-O load command")
        cmd, cmdsize = struct.unpack_from(order + "II", commands, position)
        if cmdsize < 8 or position + cmdsize > len(commands):
            raise BinaryFormatError("Mach-O load command size out of range")
        if cmd in (0x1, 0x19):
            _read_macho_segment(executable, commands, position, order, cmd == 0x19)
        position += cmdsize
    return executable


def _read_macho_segment(
    executable: Executable, commands: bytes, position: int, order: str, is64: bool
) -> None:
    if is64:
        segname, vmaddr, _vmsize, fileoff, filesize, _maxprot, initprot, nsects, _fl = struct.unpack_from(
            order + "16sQQQQiiII", commands, position + 8
        )
        section_base, section_size, section_format = position + 72, 80, order + "16s16sQQI"
    else:
        segname, vmaddr, _vmsize, fileoff, filesize, _maxprot, initprot, nsects, _fl = struct.unpack_from(
            order + "16sIIIIiiII", commands, position + 8
        )
        section_base, section_size, section_format = position + 56, 68, order + "16s16sIII"
    segment_name = segname.split(b"\0", 1)[0].decode("latin-1")
    writable = bool(initprot & 0x2)
    if filesize:
        executable.segments.append(
            Segment(
                address=vmaddr,
                offset=fileoff,
                file_size=min(filesize, max(0, executable.file_size - fileoff)),
            )
        )
    if nsects > MAX_SECTIONS or section_base + nsects * section_size > len(commands):
        raise BinaryFormatError("Mach-O section table out of range")
    for index in range(nsects):
        sectname, _segname, addr, size, offset = struct.unpack_from(
            section_format, commands, section_base + index * section_size
        )
        executable.sections.append(
            Section(
                name=sectname.split(b"\0", 1)[0].decode("latin-1"),
                offset=offset,
                size=size,
                address=addr,
                has_data=offset != 0 and offset + size <= executable.file_size,
                writable=writable,
                segment=segment_name,
            )
        )


# -- PE -----------------------------------------------------------------------------------------
def _parse_pe(stream: BinaryIO, file_size: int, head: bytes) -> Executable | None:
    (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
    if pe_offset + 24 > file_size:
        return None  # an "MZ" text file or a DOS program: not something we read
    coff = read_at(stream, pe_offset, 24, file_size)
    if coff[:4] != b"PE\0\0":
        return None
    machine, nsections, _stamp, symtab, nsymbols, optional_size, _chars = struct.unpack_from(
        "<HHIIIHH", coff, 4
    )
    if nsections > MAX_SECTIONS:
        raise BinaryFormatError("implausible PE section count")
    optional = read_at(stream, pe_offset + 24, optional_size, file_size) if optional_size else b""
    magic = struct.unpack_from("<H", optional, 0)[0] if len(optional) >= 2 else 0
    if magic == 0x20B and len(optional) >= 32:
        image_base, pointer_size = struct.unpack_from("<Q", optional, 24)[0], 8
    elif magic == 0x10B and len(optional) >= 32:
        image_base, pointer_size = struct.unpack_from("<I", optional, 28)[0], 4
    else:
        raise BinaryFormatError("unknown PE optional header")
    table = read_at(stream, pe_offset + 24 + optional_size, 40 * nsections, file_size)
    string_table = b""
    executable = Executable(
        format="pe",
        byte_order="<",
        pointer_size=pointer_size,
        architecture=PE_MACHINES.get(machine, f"pe-machine-{machine}"),
        file_size=file_size,
    )
    for index in range(nsections):
        raw_name, vsize, vaddr, raw_size, raw_offset = struct.unpack_from("<8sIIII", table, index * 40)
        (characteristics,) = struct.unpack_from("<I", table, index * 40 + 36)
        name = raw_name.split(b"\0", 1)[0].decode("latin-1")
        if name.startswith("/") and name[1:].isdigit():
            # Long section names live in the COFF string table (Go uses it for .go.buildinfo).
            if not string_table and symtab:
                string_table = _pe_string_table(stream, file_size, symtab, nsymbols)
            start = int(name[1:])
            end = string_table.find(b"\0", start)
            if 0 <= start < len(string_table) and end > start:
                name = string_table[start:end].decode("latin-1")
        size = min(vsize, raw_size) if vsize else raw_size
        writable = bool(characteristics & PE_SCN_MEM_WRITE)
        executable.sections.append(
            Section(
                name=name,
                offset=raw_offset,
                size=size,
                address=image_base + vaddr,
                has_data=raw_offset != 0 and raw_offset + size <= file_size,
                writable=writable,
            )
        )
        if raw_offset and size:
            executable.segments.append(
                Segment(
                    address=image_base + vaddr,
                    offset=raw_offset,
                    file_size=min(size, max(0, file_size - raw_offset)),
                    writable=writable,
                )
            )
    return executable


def _pe_string_table(stream: BinaryIO, file_size: int, symtab: int, nsymbols: int) -> bytes:
    start = symtab + nsymbols * 18
    if start + 4 > file_size:
        return b""
    (length,) = struct.unpack("<I", read_at(stream, start, 4, file_size))
    if length < 4 or length > MAX_STRING_TABLE or start + length > file_size:
        return b""
    return read_at(stream, start, length, file_size)
