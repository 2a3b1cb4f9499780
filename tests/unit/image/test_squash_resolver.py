"""Whiteout-aware squash and the root-confined FileResolver."""

from __future__ import annotations

import io
from typing import BinaryIO

import pytest

from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.fragment import LayerIndex
from portwarden.core.image.resolver import FileResolver
from portwarden.core.image.squash import squash
from portwarden.core.model.files import FileRecord, FileType


def rec(
    path: str,
    kind: FileType = FileType.FILE,
    *,
    link: str | None = None,
    sha: str | None = None,
    layer: str = "l1",
) -> FileRecord:
    return FileRecord(
        path=path,
        type=kind,
        mode=0o644,
        link_target=link,
        sha256=sha if sha is not None else ("a" * 64 if kind == FileType.FILE else None),
        layer_digest=layer,
    )


def layer(
    name: str, records: list[FileRecord], whiteouts: tuple[str, ...] = (), opaque: tuple[str, ...] = ()
) -> LayerIndex:
    return LayerIndex(
        digest=name,
        diff_id=name,
        media_type="t",
        compressed_size=0,
        uncompressed_size=0,
        records={r.path: r for r in records},
        whiteouts=whiteouts,
        opaque_dirs=opaque,
    )


def test_whiteout_removes_a_path_and_its_subtree() -> None:
    tree, _ = squash(
        [
            layer("l1", [rec("/a", FileType.DIRECTORY), rec("/a/b"), rec("/a/c/d"), rec("/keep")]),
            layer("l2", [], whiteouts=("/a",)),
        ]
    )
    assert "/a" not in tree and "/a/b" not in tree and "/a/c/d" not in tree
    assert "/keep" in tree


def test_opaque_directory_hides_lower_content_but_keeps_its_own() -> None:
    tree, _ = squash(
        [
            layer("l1", [rec("/etc", FileType.DIRECTORY), rec("/etc/old"), rec("/etc/sub/deep")]),
            layer("l2", [rec("/etc/new", layer="l2")], opaque=("/etc",)),
        ]
    )
    assert "/etc/old" not in tree and "/etc/sub/deep" not in tree
    assert tree["/etc/new"].layer_digest == "l2"
    assert tree["/etc"].type == FileType.DIRECTORY


def test_a_layer_can_delete_and_recreate_a_path() -> None:
    tree, _ = squash(
        [
            layer("l1", [rec("/app/x", layer="l1"), rec("/app/y", layer="l1")]),
            layer("l2", [rec("/app/x", layer="l2")], whiteouts=("/app",)),
        ]
    )
    assert tree["/app/x"].layer_digest == "l2"
    assert "/app/y" not in tree


def test_a_file_replacing_a_directory_takes_its_subtree() -> None:
    tree, _ = squash(
        [
            layer("l1", [rec("/opt", FileType.DIRECTORY), rec("/opt/tool")]),
            layer("l2", [rec("/opt", layer="l2")]),
        ]
    )
    assert tree["/opt"].type == FileType.FILE
    assert "/opt/tool" not in tree


def test_hardlinks_to_lower_layers_are_resolved_and_parents_implied() -> None:
    tree, warnings = squash(
        [
            layer("l1", [rec("/usr/bin/python3.11", sha="b" * 64)]),
            layer("l2", [rec("/usr/bin/python3", FileType.HARDLINK, link="/usr/bin/python3.11")]),
            layer("l3", [rec("/x/dangling", FileType.HARDLINK, link="/nowhere")]),
        ]
    )
    assert tree["/usr/bin/python3"].sha256 == "b" * 64
    assert tree["/usr"].type == FileType.DIRECTORY and tree["/usr/bin"].type == FileType.DIRECTORY
    assert any("/x/dangling" in w for w in warnings)


@pytest.fixture
def resolver() -> FileResolver:
    base = FileResolver.from_files(
        {
            "/etc/os-release": "ID=alpine\n",
            "/usr/lib/os-release": "ID=debian\n",
            "/usr/local/lib/python3.11/site-packages/pkg-1.0.dist-info/METADATA": "Name: pkg\n",
        }
    )
    records = {r.path: r for r in base.records()}
    for path, target in {
        "/etc/escape": "../../../../usr/lib/os-release",
        "/etc/absolute": "/usr/lib/os-release",
        "/lib": "usr/lib",
        "/loop1": "/loop2",
        "/loop2": "/loop1",
        "/dangling": "/nope",
    }.items():
        records[path] = FileRecord(path=path, type=FileType.SYMLINK, mode=0o777, link_target=target)
    return FileResolver(records, base._contents)


def test_symlinks_resolve_inside_the_root(resolver: FileResolver) -> None:
    assert resolver.realpath("/etc/escape") == "/usr/lib/os-release"
    assert resolver.read_text("/etc/escape") == "ID=debian\n"
    assert resolver.realpath("/etc/absolute") == "/usr/lib/os-release"
    assert resolver.realpath("/lib/os-release") == "/usr/lib/os-release"
    assert resolver.realpath("/../../etc/os-release") == "/etc/os-release"


def test_loops_and_dangling_links_resolve_to_nothing(resolver: FileResolver) -> None:
    assert resolver.realpath("/loop1") is None
    assert not resolver.exists("/dangling")
    assert resolver.lstat("/dangling") is not None
    with pytest.raises(FileNotFoundError):
        resolver.open("/loop1")


def test_glob_and_walk(resolver: FileResolver) -> None:
    found = [r.path for r in resolver.glob("**/*.dist-info/METADATA")]
    assert found == ["/usr/local/lib/python3.11/site-packages/pkg-1.0.dist-info/METADATA"]
    assert [r.path for r in resolver.glob("/etc/*-release")] == ["/etc/os-release"]
    assert {r.path for r in resolver.walk("/usr/lib")} == {"/usr/lib", "/usr/lib/os-release"}


def test_content_that_was_not_captured_is_reported(resolver: FileResolver) -> None:
    records = {r.path: r for r in resolver.records()}
    records["/etc/big"] = FileRecord(path="/etc/big", type=FileType.FILE, mode=0o755, sha256="c" * 64)
    view = FileResolver(records, resolver._contents)
    with pytest.raises(ContentUnavailableError):
        view.read_bytes("/etc/big")
    with pytest.raises(IsADirectoryError):
        view.open("/etc")


class _WalkingResolver(FileResolver):
    """The resolver with its shortcut turned off: every path walked component by component."""

    def _is_plain_directory(self, directory: str) -> bool:
        return False


def test_the_resolution_shortcut_answers_as_the_walk_does() -> None:
    """Random trees with symlinks (absolute, relative, through ``..``, dangling, looping), files
    standing where directories are expected, missing directories, dot files; every lookup of every
    path and of odd spellings of it gives what the component-by-component walk gives."""
    import random

    generator = random.Random(15)
    names = ["a", "b", ".c", "d.d", "..e"]
    for _ in range(300):
        records: dict[str, FileRecord] = {"/": FileRecord(path="/", type=FileType.DIRECTORY, mode=0o755)}
        for _ in range(generator.randint(1, 25)):
            path = "/" + "/".join(generator.choice(names) for _ in range(generator.randint(1, 4)))
            kind = generator.choice([FileType.DIRECTORY, FileType.FILE, FileType.SYMLINK, FileType.DIRECTORY])
            target = None
            if kind == FileType.SYMLINK:
                target = generator.choice(["/a", "a", "../b", "/a/b", ".", "..", "/missing", "b/../a", "/"])
            sha = "ab" * 32 if kind == FileType.FILE else None
            records[path] = FileRecord(path=path, type=kind, mode=0o755, sha256=sha, link_target=target)
        contents = _Contents({"ab" * 32})
        fast, walking = FileResolver(records, contents), _WalkingResolver(records, contents)
        queries = list(records)
        queries += (
            [p + "/" for p in records] + [p + "/." for p in records] + ["//a", "/a/./b", "/a/../b", "a/b"]
        )
        queries += [
            "/" + "/".join(generator.choice([*names, ".", ".."]) for _ in range(3)) for _ in range(20)
        ]
        for query in queries:
            assert fast.realpath(query) == walking.realpath(query), query
            assert fast.stat(query) == walking.stat(query), query
            assert fast.lstat(query) == walking.lstat(query), query
            assert fast.has_content(query) == walking.has_content(query), query


class _Contents:
    def __init__(self, present: set[str]) -> None:
        self._present = present

    def has(self, sha256: str) -> bool:
        return sha256 in self._present

    def open(self, sha256: str) -> BinaryIO:
        return io.BytesIO(b"x")


def test_paths_taken_as_canonical_only_when_normalizing_would_not_change_them() -> None:
    import random

    from portwarden.core.image.paths import normalize
    from portwarden.core.image.resolver import _normalized

    generator = random.Random(15)
    pieces = ["a", ".", "..", "", "/", "b.c", ".x", "//", "/.", "./", "/.."]
    for _ in range(50_000):
        path = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 8)))
        assert _normalized(path) == normalize(path), path
