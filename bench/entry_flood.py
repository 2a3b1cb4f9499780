"""Peak RSS of an entry flood (refused) and of a legitimate layer of many files (analyzed).

Usage: python bench/entry_flood.py [--flood 2000000] [--files 300000] [--keep]

Builds two single-layer images as OCI layouts under bench/out/entries/ (once; reused while their
parameters match):

- flood: one layer of ``--flood`` empty files, past ``max_entries_per_layer`` (1,000,000): the read
  must stop with the limit's error, and stay under 512 MiB on the way;
- files: one layer of ``--files`` small files with distinct contents (a large ML or Java image):
  ``portwarden sbom`` must analyze it under 600 MiB.

Each case runs ``portwarden sbom`` in a fresh process with an empty PORTWARDEN_HOME (no fragment
cache) and reads the child's peak RSS (ru_maxrss from wait4). Also prints the per-entry memory of a
layer's records, measured in-process with tracemalloc.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "entries"
BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def tar_header(name: bytes, size: int) -> bytes:
    """A ustar header for a regular file (written by hand: tarfile costs ~10x more per entry)."""
    header = bytearray(BLOCK)
    header[0 : len(name)] = name
    header[100:108] = _octal(0o644, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(0, 12)
    header[148:156] = b" " * 8
    header[156:157] = b"0"
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = f"{sum(header):06o}".encode() + b"\0 "
    return bytes(header)


def entries(count: int, with_content: bool) -> Iterator[bytes]:
    for index in range(count):
        name = f"srv/data/d{index // 1000:04d}/file{index:07d}.txt".encode()
        if with_content:
            data = f"content of file {index}\n".encode()
            yield tar_header(name, len(data)) + data + bytes(-len(data) % BLOCK)
        else:
            yield tar_header(name, 0)
    yield bytes(2 * BLOCK)


def write_layout(dest: Path, count: int, with_content: bool) -> None:
    """An OCI layout of one gzip layer (digests computed while writing)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer_tmp = dest / "layer.tmp"
    diff = hashlib.sha256()
    with layer_tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        batch: list[bytes] = []
        for piece in entries(count, with_content):
            batch.append(piece)
            if len(batch) >= 4096:
                data = b"".join(batch)
                diff.update(data)
                gz.write(data)
                batch = []
        data = b"".join(batch)
        diff.update(data)
        gz.write(data)
    layer_bytes = layer_tmp.read_bytes()
    layer_digest = hashlib.sha256(layer_bytes).hexdigest()
    layer_tmp.rename(blobs / layer_digest)

    def blob(document: dict[str, object]) -> tuple[str, int]:
        data = json.dumps(document, sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return digest, len(data)

    config_digest, config_size = blob(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff.hexdigest()}"]},
        }
    )
    manifest_digest, manifest_size = blob(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": config_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer_digest}",
                    "size": len(layer_bytes),
                }
            ],
        }
    )
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": manifest_size,
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))


def ensure_layout(name: str, count: int, with_content: bool) -> Path:
    dest = OUT / f"{name}-{count}"
    if (dest / "index.json").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    write_layout(dest, count, with_content)
    print(f"built {dest.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return dest


def run_sbom(layout: Path, *output: str) -> tuple[int, float, int, str]:
    """(exit status, wall seconds, peak RSS in KiB, last stderr line) of `portwarden sbom`."""
    with tempfile.TemporaryDirectory(prefix="pw-home-") as home:
        env = {**os.environ, "PORTWARDEN_HOME": home}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "portwarden.cli.main", "-q", "sbom", f"oci-dir:{layout}", *output],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stderr is not None
        stderr = process.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    lines = [line for line in stderr.splitlines() if line.strip()]
    return os.waitstatus_to_exitcode(status), elapsed, usage.ru_maxrss, lines[-1] if lines else ""


def bytes_per_entry(layout: Path) -> float:
    """Memory held per entry by one layer's records, measured in-process with tracemalloc."""
    code = f"""
import tracemalloc, pathlib
from portwarden.core.image.content import ContentStore
from portwarden.core.image.layer import CapturePolicy, read_layer
from portwarden.core.image.limits import SafetyLimits
layout = pathlib.Path({str(layout)!r})
index = __import__("json").loads((layout / "index.json").read_text())
blobs = layout / "blobs" / "sha256"
manifest = __import__("json").loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
layer = manifest["layers"][0]
tracemalloc.start()
with (blobs / layer["digest"][7:]).open("rb") as raw:
    result = read_layer(raw, digest=layer["digest"], size=layer["size"], media_type=layer["mediaType"],
                        capture=CapturePolicy(), contents=ContentStore(), limits=SafetyLimits())
current, _ = tracemalloc.get_traced_memory()
print(current / len(result.records))
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(output.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=2_000_000, help="empty files in the flood layer")
    parser.add_argument("--files", type=int, default=300_000, help="files in the legitimate layer")
    parser.add_argument("--keep", action="store_true", help="keep the built layouts (default: reuse)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    flood = ensure_layout("flood", args.flood, with_content=False)
    files = ensure_layout("files", args.files, with_content=True)

    code, wall, rss, last = run_sbom(flood)
    print(f"flood  {args.flood:>9} empty files: exit {code}, {wall:6.1f} s, peak RSS {rss / 1024:7.1f} MiB")
    print(f"       {last}")
    # The default output (the package table) costs what the analysis costs; `-o json` lists every
    # file (about 420 bytes of JSON per file), streamed a slice at a time: it should cost about the same.
    for label, output in (("sbom", ()), ("sbom -o json", ("-o", "json"))):
        code, wall, rss, last = run_sbom(files, *output)
        print(
            f"files  {args.files:>9} small files, {label}: exit {code}, {wall:6.1f} s, "
            f"peak RSS {rss / 1024:7.1f} MiB"
        )
        if code != 0:
            print(f"       {last}")
    print(f"records of one layer: {bytes_per_entry(files):.0f} bytes per entry (tracemalloc)")


if __name__ == "__main__":
    main()
