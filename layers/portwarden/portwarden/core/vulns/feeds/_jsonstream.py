"""Iterate the members of a large top-level JSON object without building the whole tree.

The Debian tracker serves one object of tens of megabytes (``{source package: {...}}``). Decoding it
member by member keeps memory at the size of the largest member instead of the whole document.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

from portwarden.core.errors import FeedFormatError

DEFAULT_CHUNK_CHARS = 1 << 20
_WHITESPACE = " \t\r\n"


class _Buffer:
    """Decoded text read on demand; consumed text is dropped once enough of it has accumulated."""

    def __init__(self, stream: IO[bytes], chunk_chars: int, what: str) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._chunk = chunk_chars
        self.what = what
        self.text = ""
        self.pos = 0
        self.eof = False

    def fill(self, at_least: int | None = None) -> bool:
        """Read more text (at least as much as is buffered, so retries stay linear); False at the end."""
        if self.eof:
            return False
        if self.pos > self._chunk:
            self.text = self.text[self.pos :]
            self.pos = 0
        wanted = max(self._chunk, at_least or 0, len(self.text) - self.pos)
        raw = self._stream.read(wanted)
        try:
            decoded = self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise FeedFormatError(f"{self.what}: not UTF-8 text ({exc})") from exc
        if not raw:
            self.eof = True
        self.text += decoded
        return bool(raw)

    def skip_whitespace(self) -> None:
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text) or not self.fill():
                return

    def peek(self) -> str:
        self.skip_whitespace()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            shown = repr(found) if found else "end of input"
            raise FeedFormatError(f"{self.what}: expected {char!r} but found {shown}")
        self.pos += 1

    def decode_value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the JSON value at the cursor, reading more input until it is complete."""
        self.skip_whitespace()
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if self.fill():
                    continue
                raise FeedFormatError(f"{self.what}: invalid or truncated JSON ({exc.msg})") from exc
            # A number or literal that ends exactly at the buffer end may continue in the next chunk.
            if end == len(self.text) and self.fill():
                continue
            self.pos = end
            return value


def iter_object_members(
    stream: IO[bytes], what: str, *, chunk_chars: int = DEFAULT_CHUNK_CHARS
) -> Iterator[tuple[str, Any]]:
    """(key, decoded value) for each member of the top-level JSON object in ``stream``, in order."""
    buffer = _Buffer(stream, chunk_chars, what)
    decoder = json.JSONDecoder()
    buffer.expect("{")
    if buffer.peek() == "}":
        buffer.pos += 1
        return
    while True:
        key = buffer.decode_value(decoder)
        if not isinstance(key, str):
            raise FeedFormatError(f"{what}: object key is not a string")
        buffer.expect(":")
        yield key, buffer.decode_value(decoder)
        separator = buffer.peek()
        buffer.pos += 1
        if separator == "}":
            return
        if separator != ",":
            shown = repr(separator) if separator else "end of input"
            raise FeedFormatError(f"{what}: expected ',' or '}}' but found {shown}")
