"""The diff_id is hashed on a thread of its own: each stream's digest is its own, whatever runs beside it.

Many hashers and many layer reads run at once on large inputs, so that chunks of different streams
really interleave: a hash object, a queue or a chunk shared between them shows up as a wrong digest.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from portwarden.core.errors import ImageSourceError
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.inflate import ChunkHasher
from portwarden.core.image.layer import read_layer
from portwarden.core.image.limits import SafetyLimits
from tests.support.ocibuild import build_layer, file, sha256_digest


def test_hashers_running_at_once_each_hash_their_own_chunks() -> None:
    rng = random.Random(42)
    streams = [[rng.randbytes(rng.randint(1, 1 << 19)) for _ in range(40)] for _ in range(12)]
    start = threading.Barrier(len(streams))

    def digest(chunks: list[bytes]) -> str:
        hasher = ChunkHasher("test")
        try:
            start.wait()
            for chunk in chunks:
                hasher.feed(chunk)
                hasher.feed(b"")  # nothing to hash
            hasher.end()
            return hasher.hexdigest()
        finally:
            hasher.close()

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=len(streams)) as pool:
            digests = list(pool.map(digest, streams))
        assert digests == [hashlib.sha256(b"".join(chunks)).hexdigest() for chunks in streams]


def test_the_digest_exists_only_for_an_ended_stream() -> None:
    hasher = ChunkHasher("test")
    hasher.feed(b"abc")
    with pytest.raises(RuntimeError):
        hasher.hexdigest()
    hasher.end()
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    hasher.close()


def test_an_abandoned_stream_stops_its_thread_promptly() -> None:
    hasher = ChunkHasher("test")
    for _ in range(2):
        hasher.feed(b"x" * (1 << 20))
    started = time.monotonic()
    hasher.close()
    assert not hasher._thread.is_alive()
    assert time.monotonic() - started < 2


def test_a_hashing_failure_reaches_the_feeder_instead_of_a_hang() -> None:
    hasher = ChunkHasher("test")
    hasher._queue.put("not bytes")  # type: ignore[arg-type]  # sha256 refuses a str
    deadline = time.monotonic() + 5
    with pytest.raises(TypeError):
        while time.monotonic() < deadline:
            hasher.feed(b"more")
    hasher.close()


def _layer(seed: int) -> tuple[bytes, str]:
    rng = random.Random(seed)
    entries = [file(f"d/{n}", rng.randbytes(rng.randint(0, 3 << 20))) for n in range(4)]
    entries += [file(f"t/{n}", b"line %d\n" % n * rng.randint(1, 50_000)) for n in range(8)]
    built = build_layer(entries)
    return built.blob_data, built.diff_id


def _read(blob: bytes, diff_id: str) -> str:
    return read_layer(
        io.BytesIO(blob),
        digest=sha256_digest(blob),
        size=len(blob),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CapturePolicy(),
        contents=ContentStore(),
        limits=SafetyLimits(),
        expected_diff_id=diff_id,
    ).diff_id


def test_layers_read_at_once_each_get_their_own_diff_id() -> None:
    layers = [_layer(seed) for seed in range(6)]
    for _ in range(4):
        with ThreadPoolExecutor(max_workers=len(layers)) as pool:
            got = list(pool.map(lambda layer: _read(*layer), layers))
        assert got == [diff_id for _, diff_id in layers]


def test_a_wrong_diff_id_is_still_refused() -> None:
    blob, _ = _layer(99)
    with pytest.raises(ImageSourceError, match="unpacks to"):
        _read(blob, "sha256:" + "0" * 64)
