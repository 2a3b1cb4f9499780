"""A model of the least work a cached answer needs, without pydantic: what `portwarden sbom LAYOUT -o json`
could cost for a new image whose layers are all cached, if the path loaded no model library and the
catalogers' results were kept per layer (as Trivy keeps each layer's packages).

Usage: python bench/cached_answer_floor.py --packages DOCUMENT PACKAGES   (once, untimed)
       python bench/cached_answer_floor.py HOME LAYOUT PACKAGES > document.json

This is not Portwarden's answer; it is the floor a redesign of the cached paths would start from, to
weigh that redesign (docs/performance.md, "Not reached yet"). It does, with the standard library and
zstandard only:

1. the layout's index, manifest and config read and checked against their digests;
2. each layer's fragment read from HOME's layer cache (the newest of its fragments: the bench home has
   one analyzer set), inflated, its captured contents checked against their sha256, its columns
   decoded into a tuple per entry (paths absolute, types known, counts non-negative, one digest per
   digested entry, as `core.image.fragment` checks them);
3. the layers squashed in manifest order (whiteouts, opaque directories, parent directories);
4. the packages: what merging per-layer cataloger results would yield is stood in for by PACKAGES,
   the `packages` member of Portwarden's own document of the same image, encoded as that document
   has it (`--packages` writes it): read, checked against the sha256 stored beside it and spliced in
   (the per-layer merge itself is not modelled);
5. the document written with the inventory in path order, in the native document's shape, and a copy
   compressed and hashed as the stored document is.

It prints, on stderr, the number of files and packages, so a run can be checked against
Portwarden's document of the same image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from json.encoder import encode_basestring  # C: the quoting json.dumps does for a str
from pathlib import Path

import zstandard

_TYPES = {"file", "dir", "symlink", "hardlink", "char", "block", "fifo"}


def blob(layout: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    data = (layout / "blobs" / algorithm / hexdigest).read_bytes()
    if hashlib.sha256(data).hexdigest() != hexdigest:
        raise SystemExit(f"{digest}: the blob does not match its digest")
    return data


def fragment(home: Path, digest: str) -> dict[str, object]:
    algorithm, _, hexdigest = digest.partition(":")
    candidates = sorted((home / "cache" / "fragments" / algorithm / hexdigest).glob("*.json.zst"))
    if not candidates:
        raise SystemExit(f"{digest}: no cached fragment in {home}")
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    data = zstandard.ZstdDecompressor().decompress(newest.read_bytes())
    header_end = data.find(b"\n")
    document = json.loads(data[:header_end])
    body = memoryview(data)[header_end + 1 :]
    offset = 0
    for sha, size in document["captured"]:
        if hashlib.sha256(body[offset : offset + size]).hexdigest() != sha:
            raise SystemExit(f"{digest}: a captured content does not match its digest")
        offset += size
    return dict(document["index"])


def entries(index: dict[str, object], layer_digest: str) -> list[tuple[object, ...]]:
    columns = index["records"]
    assert isinstance(columns, dict)
    paths = columns["paths"]
    length = len(paths)
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise SystemExit("a path is not absolute")
    types = columns["types"]
    if not set(types) <= _TYPES or len(types) != length:
        raise SystemExit("a type is unknown")
    numbers = [columns[name] for name in ("modes", "uids", "gids", "sizes")]
    for column in numbers:
        if len(column) != length or (column and (set(map(type, column)) != {int} or min(column) < 0)):
            raise SystemExit("a count is not a non-negative integer")
    mask = columns["digested"]
    raw = base64.b64decode(columns["digests"], validate=True)
    if len(mask) != length or len(raw) != 32 * mask.count("1"):
        raise SystemExit("the digests do not match the mask")
    hexes = raw.hex()
    next_digest = iter([hexes[i : i + 64] for i in range(0, len(hexes), 64)]).__next__
    digests = [None if flag == "0" else next_digest() for flag in mask]
    links: list[str | None] = [None] * length
    for position, target in columns["links"]:
        links[position] = target
    return list(zip(paths, types, *numbers, digests, links, [layer_digest] * length, strict=True))


def squash(layers: list[tuple[dict[str, object], list[tuple[object, ...]]]]) -> dict[str, tuple[object, ...]]:
    tree: dict[str, tuple[object, ...]] = {}
    for index, records in layers:
        for opaque in index["opaque_dirs"]:  # type: ignore[union-attr]
            prefix = str(opaque).rstrip("/") + "/"
            for path in [p for p in tree if p.startswith(prefix)]:
                del tree[path]
        for whiteout in index["whiteouts"]:  # type: ignore[union-attr]
            prefix = str(whiteout).rstrip("/") + "/"
            tree.pop(str(whiteout), None)
            for path in [p for p in tree if p.startswith(prefix)]:
                del tree[path]
        for record in records:
            tree[str(record[0])] = record
    for path in list(tree):  # every parent directory is an entry of the view
        parent = path.rpartition("/")[0]
        while parent and parent not in tree:
            tree[parent] = (parent, "dir", 0o755, 0, 0, 0, None, None, None)
            parent = parent.rpartition("/")[0]
    return tree


def file_member(record: tuple[object, ...]) -> str:
    path, kind, mode, uid, gid, size, sha256, link, layer = record
    assert isinstance(mode, int)
    flags = (  # setuid and setgid of files only (a setgid directory passes its group down)
        kind != "dir" and bool(mode & 0o4000),
        kind != "dir" and bool(mode & 0o2000),
        kind in ("file", "dir") and bool(mode & 0o002),
    )
    setuid, setgid, world_writable = ("true" if flag else "false" for flag in flags)
    sha = "null" if sha256 is None else f'"{sha256}"'
    target = "null" if link is None else encode_basestring(str(link))
    layer_text = "null" if layer is None else encode_basestring(str(layer))
    return (
        f'    {{\n      "path": {encode_basestring(str(path))},\n      "type": "{kind}",\n'
        f'      "mode": "{mode & 0o7777:04o}",\n      "uid": {uid},\n      "gid": {gid},\n'
        f'      "size": {size},\n      "sha256": {sha},\n      "link_target": {target},\n'
        f'      "layer_digest": {layer_text},\n      "setuid": {setuid},\n      "setgid": {setgid},\n'
        f'      "world_writable": {world_writable}\n    }}'
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--packages":
        member = json.dumps(json.loads(Path(sys.argv[2]).read_bytes())["packages"], indent=2).encode()
        Path(sys.argv[3]).write_bytes(member)
        Path(sys.argv[3] + ".sha256").write_text(hashlib.sha256(member).hexdigest())
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    home, layout, packages_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    index = json.loads((layout / "index.json").read_bytes())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads(blob(layout, manifest_digest))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    diff_ids = config["rootfs"]["diff_ids"]
    layers = []
    for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        layer_index = fragment(home, layer["digest"])
        if layer_index["diff_id"] != diff_id:
            raise SystemExit(f"{layer['digest']}: the fragment's diff_id is not the config's")
        layers.append((layer_index, entries(layer_index, layer["digest"])))
    tree = squash(layers)
    packages = packages_file.read_bytes()
    if hashlib.sha256(packages).hexdigest() != Path(f"{packages_file}.sha256").read_text():
        raise SystemExit("the packages do not match their digest")

    pieces = [
        f'{{\n  "schema_version": 1,\n  "source": {json.dumps({"manifest_digest": manifest_digest})},\n'
        f'  "packages": {packages.decode()},\n  "files": [\n',
        ",\n".join(file_member(tree[path]) for path in sorted(tree)),
        f'\n  ],\n  "image": {json.dumps({"config": config.get("config", {})})}\n}}\n',
    ]
    out = sys.stdout.buffer
    hasher = hashlib.sha256()
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()
    stored = []
    for piece in pieces:
        data = piece.encode()
        out.write(data)
        hasher.update(data)
        stored.append(compressor.compress(data))
    stored.append(compressor.flush())
    package_count = packages.count(b'"purl"')
    print(
        f"{len(tree)} files, {package_count} packages, stored copy {sum(map(len, stored))} bytes, "
        f"sha256 {hasher.hexdigest()[:16]}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
