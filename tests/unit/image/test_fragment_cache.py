"""The layer fragment cache: compact entries round-trip exactly, and a tampered fragment is a miss."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pytest
import zstandard

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.secrets import secret_scanner
from portwarden.core.image import layer_cache as cache_module
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.fragment import LayerEntry, LayerIndex, as_record
from portwarden.core.image.layer import read_layer
from portwarden.core.image.layer_cache import LayerCache
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.model.files import FileRecord
from tests.support.fragments import rewrite_fragment, split_fragment
from tests.support.ocibuild import directory, file, hardlink, symlink, tar_bytes, whiteout

CAPTURE = CapturePolicy(("/etc/os-release",))
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----\n"


def read_sample(contents: ContentStore) -> LayerIndex:
    tar = tar_bytes(
        [
            directory("etc"),
            file("etc/os-release", "ID=debian\n"),
            file("etc/empty"),
            file("usr/bin/su", "x", mode=0o4755, uid=70000, gid=5),
            hardlink("usr/bin/su2", "usr/bin/su"),
            symlink("bin", "usr/bin"),
            file("root/.ssh/id_rsa", KEY),
            whiteout("var/old"),
        ]
    )
    blob = gzip.compress(tar, mtime=0)
    return read_layer(
        io.BytesIO(blob),
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CAPTURE,
        contents=contents,
        limits=SafetyLimits(),
        scanners=(secret_scanner(),),
    )


def entry_tuple(record: object) -> tuple[object, ...]:
    # A layer read makes LayerEntrys; a fragment read back makes the FileRecords the squash would.
    assert isinstance(record, LayerEntry | FileRecord)
    return (
        record.path,
        record.type,
        record.mode,
        record.uid,
        record.gid,
        record.size,
        record.sha256,
        record.link_target,
        record.layer_digest,
    )


def test_a_fragment_round_trips_exactly(tmp_path: Path) -> None:
    cache = LayerCache(FilesystemBlobStore(tmp_path / "cache"), "fp")
    contents = ContentStore()
    index = read_sample(contents)
    cache.save(index, CAPTURE, contents)
    loaded = cache.lookup(index.digest, restored := ContentStore()).index
    assert restored.digests() == [hashlib.sha256(b"ID=debian\n").hexdigest()]
    assert loaded is not None
    assert {p: entry_tuple(r) for p, r in loaded.records.items()} == {
        p: entry_tuple(r) for p, r in index.records.items()
    }
    assert loaded.records["/usr/bin/su"].uid == 70000 and loaded.records["/usr/bin/su"].mode_octal == "4755"
    assert loaded.whiteouts == ("/var/old",) and loaded.findings == index.findings
    assert loaded.findings["secrets"], "the private key was found"
    assert (loaded.digest, loaded.diff_id, loaded.uncompressed_size) == (
        index.digest,
        index.diff_id,
        index.uncompressed_size,
    )


def _rewrite(path: Path, change: object) -> None:
    path.write_bytes(rewrite_fragment(path.read_bytes(), header=change))  # type: ignore[arg-type]


def _column(name: str, position: int, value: object) -> object:
    return lambda d: d["index"]["records"][name].__setitem__(position, value)


TAMPERS = [
    _column("modes", 0, 0o40755),  # file-type bits in the mode
    _column("modes", 0, True),  # JSON's true is not a number
    _column("modes", 0, 1.5),
    _column("uids", 0, -1),
    _column("sizes", 0, "7"),
    _column("paths", 0, "relative/path"),
    _column("paths", 1, ""),  # an empty path
    _column("paths", 0, None),
    _column("types", 0, "socket"),
    lambda d: d["index"]["records"]["gids"].pop(),  # a column shorter than the others
    lambda d: d["index"]["records"].__setitem__("digested", d["index"]["records"]["digested"][:-1]),
    lambda d: d["index"]["records"].__setitem__("digested", "2" * len(d["index"]["records"]["digested"])),
    # one digest 3 bytes short
    lambda d: d["index"]["records"].__setitem__("digests", d["index"]["records"]["digests"][:-4]),
    lambda d: d["index"]["records"].__setitem__("digests", "!" + d["index"]["records"]["digests"][1:]),
    lambda d: d["index"]["records"].__setitem__("links", [[999, "/x"]]),  # a link of no entry
    lambda d: d["index"]["records"].__setitem__("links", [[0, 7]]),
    lambda d: d["index"].__setitem__("records", []),
    lambda d: d.__setitem__("format", 3),
]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_tampered_fragment_is_a_miss(tmp_path: Path, tamper: object) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    cache = LayerCache(blobs, "fp")
    index = read_sample(ContentStore())
    cache.save(index, CAPTURE, ContentStore())
    [fragment] = (tmp_path / "cache").rglob("fp.json.zst")
    _rewrite(fragment, tamper)
    lookup = cache.lookup(index.digest, ContentStore())
    assert lookup.index is None
    if tamper is not TAMPERS[-1]:  # another format is an ordinary miss; the rest are damage, reported
        assert lookup.problem is not None and "unreadable fragment" in lookup.problem


@pytest.mark.parametrize("frame", ["no stated size", "over the size limit"])
def test_a_fragment_stating_no_size_or_too_much_is_not_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame: str
) -> None:
    """Inflating allocates what a frame states at once: a frame that states no size, or more than a
    fragment can hold, is a miss with its reason and is never inflated; the layer read again
    replaces it."""
    blobs = FilesystemBlobStore(tmp_path / "cache")
    cache = LayerCache(blobs, "fp")
    index = read_sample(ContentStore())
    cache.save(index, CAPTURE, ContentStore())
    [fragment] = (tmp_path / "cache").rglob("fp.json.zst")
    sound = fragment.read_bytes()
    if frame == "no stated size":
        data = zstandard.ZstdDecompressor().decompress(sound)
        fragment.write_bytes(
            zstandard.ZstdCompressor(write_checksum=True, write_content_size=False).compress(data)
        )
    else:
        monkeypatch.setattr(cache_module, "MAX_FRAGMENT_BYTES", zstandard.frame_content_size(sound) - 1)

    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("the frame was inflated")

    with monkeypatch.context() as patched:
        patched.setattr(cache_module.zstandard, "ZstdDecompressor", never)
        lookup = cache.lookup(index.digest, ContentStore())
    assert lookup.index is None and lookup.problem is not None
    assert ("states no size" if frame == "no stated size" else "over") in lookup.problem
    if frame == "over the size limit":
        monkeypatch.setattr(cache_module, "MAX_FRAGMENT_BYTES", zstandard.frame_content_size(sound))
    cache.save(index, CAPTURE, ContentStore())
    assert cache.lookup(index.digest, ContentStore()).index is not None


def test_each_column_is_decoded_in_place(tmp_path: Path) -> None:
    """Every attribute lands on its own entry: a digest, a link target or an owner shifted by one entry
    would still decode, so the round trip is checked entry by entry on a layer of many kinds."""
    cache = LayerCache(FilesystemBlobStore(tmp_path / "cache"), "fp")
    index = read_sample(ContentStore())
    cache.save(index, CAPTURE, ContentStore())
    loaded = cache.lookup(index.digest, ContentStore()).index
    assert loaded is not None
    assert list(loaded.records) == list(index.records)
    for path, record in index.records.items():
        assert entry_tuple(loaded.records[path]) == entry_tuple(record), path
        decoded = loaded.records[path]
        assert isinstance(decoded, FileRecord) and decoded == as_record(record)
        assert type(decoded) is FileRecord and decoded._asdict() == as_record(record)._asdict()
    assert loaded.records["/bin"].link_target == "usr/bin" and loaded.records["/bin"].sha256 is None
    assert loaded.records["/usr/bin/su2"].link_target == "/usr/bin/su"
    assert loaded.records["/etc/empty"].sha256 == hashlib.sha256(b"").hexdigest()


def test_a_fragment_of_another_diff_id_is_a_miss(tmp_path: Path) -> None:
    """The image config names the diff_id of every layer; a fragment that states another one is not
    used (the layer read again verifies the diff_id for real)."""
    cache = LayerCache(FilesystemBlobStore(tmp_path / "cache"), "fp")
    index = read_sample(ContentStore())
    cache.save(index, CAPTURE, ContentStore())
    assert cache.lookup(index.digest, ContentStore(), index.diff_id).index is not None
    lookup = cache.lookup(index.digest, ContentStore(), "sha256:" + "0" * 64)
    assert lookup.index is None
    assert lookup.problem is not None and "is not the image config's" in lookup.problem


def _captured_fragment(tmp_path: Path) -> tuple[LayerCache, LayerIndex, Path]:
    cache = LayerCache(FilesystemBlobStore(tmp_path / "cache"), "fp")
    contents = ContentStore()
    index = read_sample(contents)
    cache.save(index, CAPTURE, contents)
    [fragment] = (tmp_path / "cache").rglob("fp.json.zst")
    return cache, index, fragment


def test_the_captured_contents_travel_in_the_fragments_own_object(tmp_path: Path) -> None:
    _cache, _index, fragment = _captured_fragment(tmp_path)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [fragment]
    document, body = split_fragment(fragment.read_bytes())
    assert document["captured"] == [[hashlib.sha256(b"ID=debian\n").hexdigest(), 10]]
    assert body == b"ID=debian\n"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda body: body[:-1], "truncated"),
        (lambda body: b"", "truncated"),
        (lambda body: body.replace(b"debian", b"ubuntu"), "does not match its digest"),
        (lambda body: body + b"x", "more than the contents it lists"),
    ],
    ids=["shortened", "emptied", "altered", "lengthened"],
)
def test_damaged_captured_contents_are_a_miss_and_never_loaded(
    tmp_path: Path, damage: object, problem: str
) -> None:
    cache, index, fragment = _captured_fragment(tmp_path)
    fragment.write_bytes(rewrite_fragment(fragment.read_bytes(), body=damage))  # type: ignore[arg-type]
    restored = ContentStore()
    lookup = cache.lookup(index.digest, restored)
    assert lookup.index is None and lookup.problem is not None and problem in lookup.problem
    if problem == "does not match its digest":
        assert restored.digests() == []


def test_a_fragment_listing_a_content_of_a_bad_size_is_a_miss(tmp_path: Path) -> None:
    cache, index, fragment = _captured_fragment(tmp_path)
    for size in (-1, "10", 10.0, None):
        fragment.write_bytes(
            rewrite_fragment(
                fragment.read_bytes(), header=lambda d, s=size: d["captured"][0].__setitem__(1, s)
            )
        )
        lookup = cache.lookup(index.digest, ContentStore())
        assert lookup.index is None and lookup.problem is not None
