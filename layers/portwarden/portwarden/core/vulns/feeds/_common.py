"""Small helpers shared by the feed parsers: reading inputs, timestamps, defensive field access."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import IO, Any, cast

from portwarden.core.errors import FeedFormatError

# What a fetcher may hand a parser: the whole body, or a binary stream to read once.
FeedInput = bytes | bytearray | memoryview | IO[bytes]

_GZIP_MAGIC = b"\x1f\x8b"


def as_binary_stream(data: FeedInput) -> IO[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    return data


def maybe_gunzip(stream: IO[bytes]) -> IO[bytes]:
    """Transparently decompress a gzip stream (EPSS and NVD bulk files are served as ``.gz``)."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(_RawAdapter(stream))
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    return buffered


class _RawAdapter(io.RawIOBase):
    """Lets ``io.BufferedReader`` (and its ``peek``) wrap any object with a ``read`` method."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def iter_text_lines(data: FeedInput | Iterable[str]) -> Iterator[str]:
    """Lines without their line ending, from bytes, a binary stream (gzip or not) or an iterable of str."""
    if isinstance(data, str):
        # A whole text is one document, not an iterable of one-character lines.
        yield from data.splitlines()
        return
    if isinstance(data, bytes | bytearray | memoryview) or hasattr(data, "read"):
        stream = maybe_gunzip(as_binary_stream(data))  # type: ignore[arg-type]
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        for line in text:
            yield line.rstrip("\r\n")
        return
    for line in data:  # type: ignore[union-attr]
        yield line.rstrip("\r\n")


def load_json_document(data: FeedInput, what: str) -> Any:
    """Parse a whole JSON document, turning any decoding failure into one clear domain error."""
    try:
        stream = maybe_gunzip(as_binary_stream(data))
        return json.load(stream)
    except (ValueError, OSError, EOFError) as exc:  # JSONDecodeError, UnicodeDecodeError, bad gzip
        raise FeedFormatError(f"{what}: not a readable JSON document ({exc})") from exc


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FeedFormatError(f"{what}: expected a JSON object, found {type(value).__name__}")
    return value


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when the source gives no zone), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def optional_str(value: Any) -> str | None:
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def str_tuple(value: Any) -> tuple[str, ...]:
    """The strings of a JSON list, deduplicated in order; anything else in it is ignored."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(item for item in value if isinstance(item, str) and item))
