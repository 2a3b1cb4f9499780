"""Apply layers in order into the image's final filesystem.

OCI/AUFS whiteout rules: ``.wh.NAME`` deletes NAME (and everything below it) from lower layers;
``.wh..wh..opq`` empties its directory of everything lower layers put there. Removals of a layer
apply before its own entries, so a layer can delete and re-create a path. A non-directory that
replaces a directory takes the directory's subtree with it. Hard links whose target came from a
lower layer are resolved here; parents that no layer declared are implied as directories.
"""

from __future__ import annotations

from collections.abc import Sequence

from portwarden.core.image import paths
from portwarden.core.image.fragment import LayerIndex, LayerRecord, ScanFinding, as_records
from portwarden.core.model.files import FileRecord, FileType


def squash(layers: Sequence[LayerIndex]) -> tuple[dict[str, FileRecord], list[str]]:
    """The squashed records (path → record, tagged with the layer that last wrote them) and warnings.

    Layers' compact entries become ``FileRecord``s here, and only those that survive.
    """
    tree: dict[str, LayerRecord] = {}
    warnings: list[str] = []
    for layer in layers:
        removed_subtrees = set(layer.whiteouts)
        # Only paths the tree already has can replace a directory (the first layer has none to check).
        for path in tree.keys() & layer.records.keys() if tree else ():
            if tree[path].type == FileType.DIRECTORY and layer.records[path].type != FileType.DIRECTORY:
                removed_subtrees.add(path)
        emptied_dirs = set(layer.opaque_dirs)
        if removed_subtrees or emptied_dirs:
            for path in [p for p in tree if _is_removed(p, removed_subtrees, emptied_dirs)]:
                del tree[path]
        tree.update(layer.records)
    hardlinks = [path for path, entry in tree.items() if entry.type == FileType.HARDLINK]
    records = as_records(tree)
    del tree
    _resolve_hardlinks(records, hardlinks, warnings)
    _imply_parents(records)
    return records, warnings


def _is_removed(path: str, removed_subtrees: set[str], emptied_dirs: set[str]) -> bool:
    if path in removed_subtrees:
        return True
    ancestor = paths.parent(path)
    while True:
        if ancestor in removed_subtrees or ancestor in emptied_dirs:
            return True
        if ancestor == "/":
            return False
        ancestor = paths.parent(ancestor)


def _resolve_hardlinks(tree: dict[str, FileRecord], hardlinks: list[str], warnings: list[str]) -> None:
    """Give each hard link in ``hardlinks`` (paths of ``tree``) its target's digest and size."""
    for path in hardlinks:
        record = tree[path]
        if record.sha256 is not None:
            continue
        target = tree.get(record.link_target) if record.link_target else None
        if target is not None and target.type == FileType.FILE:
            tree[path] = record._replace(sha256=target.sha256, size=target.size)
        else:
            warnings.append(f"hard link {path} -> {record.link_target} has no regular file to point to")


def _imply_parents(tree: dict[str, FileRecord]) -> None:
    if "/" not in tree:
        tree["/"] = FileRecord("/", FileType.DIRECTORY, 0o755)
    for path in list(tree):
        head = path[: path.rfind("/")]
        if head[-1:] != "/" and head in tree:
            continue  # its parent is there: the common case, without paths.parent's call
        directory = paths.parent(path)
        while directory != "/" and directory not in tree:
            tree[directory] = FileRecord(
                directory, FileType.DIRECTORY, 0o755, layer_digest=tree[path].layer_digest
            )
            directory = paths.parent(directory)


def surviving_findings(
    layers: Sequence[LayerIndex], records: dict[str, FileRecord], scanner: str
) -> list[tuple[ScanFinding, str]]:
    """``scanner``'s hits whose file is still the same file in the squashed records (``squash``'s),
    each with the digest of the layer it was found in."""
    results: list[tuple[ScanFinding, str]] = []
    for layer in layers:
        for finding in layer.findings.get(scanner, ()):
            record = records.get(finding.path)
            if record is not None and record.layer_digest == layer.digest:
                results.append((finding, layer.digest))
    return results
