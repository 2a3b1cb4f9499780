"""The fastest gzip inflater available: ISA-L, then zlib-ng, then the standard library's zlib.

Inflating is most of the CPU a cold layer read costs. ISA-L (``isal``, a pinned dependency) inflates
the same streams about 2.4 times faster than zlib on x86-64, zlib-ng about 2 times; both are drop-in
``zlib`` replacements (same ``decompressobj`` interface, same stream semantics: ``unused_data``,
``unconsumed_tail``, ``eof``) that release the GIL while they work. Where neither imports (another
architecture without a wheel, a trimmed Lambda layer), zlib does the same work more slowly. Every check
around the inflater (digest, diff_id, size and ratio limits) is independent of which one runs.

With ISA-L, a gzip stream is read through its C gzip reader (``gzip_reader``): it pulls the
compressed bytes itself and inflates each requested chunk into one buffer allocated at its final size,
with one release of the interpreter lock per megabyte of input. ``decompressobj`` grows its output
from 16 KiB by doubling, copying at every step and taking the lock back after each one: about a
quarter more CPU for the same stream, and many more waits for the lock while other threads run
Python.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol, cast


class Decompressor(Protocol):
    """What the layer reader uses of a ``zlib.decompressobj``."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


# A gzip wrapper (RFC 1952) around a deflate stream with the largest window.
GZIP_WBITS = 16 + zlib.MAX_WBITS


def _load() -> tuple[str, Any, tuple[type[BaseException], ...]]:
    try:
        from isal import isal_zlib

        return "isal", isal_zlib, (zlib.error, cast(type[BaseException], isal_zlib.error))
    except ImportError:  # pragma: no cover - depends on the platform's wheels
        pass
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-not-found, unused-ignore]

        return "zlib-ng", zlib_ng, (zlib.error, cast(type[BaseException], zlib_ng.error))
    except ImportError:  # pragma: no cover
        return "zlib", zlib, (zlib.error,)


INFLATER_NAME, _MODULE, INFLATE_ERRORS = _load()


class GzipReader(Protocol):
    """What the layer reader uses of ISA-L's gzip reader."""

    def read(self, size: int, /) -> bytes: ...


class PulledStream(Protocol):
    """What the gzip reader reads from (``readinto``; it wants ``read`` to see a file-like object)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...


def gzip_reader(stream: PulledStream, buffer_size: int) -> GzipReader | None:
    """ISA-L's streaming gzip reader over ``stream`` (which it reads ``buffer_size`` bytes at a time
    through ``readinto``); None when the inflater in use has none (zlib-ng, zlib)."""
    reader_type = getattr(_MODULE, "_GzipReader", None)
    if reader_type is None:
        return None
    reader: GzipReader = reader_type(stream, buffer_size)
    return reader


def decompressobj(wbits: int) -> Decompressor:
    """A streaming decompressor from the fastest available library."""
    decompressor: Decompressor = _MODULE.decompressobj(wbits)
    return decompressor
