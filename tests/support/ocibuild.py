"""Reproducible container images for tests and examples, built in memory.

Layers come from entry specs (``file``, ``directory``, ``symlink``, ``hardlink``, ``whiteout``,
``opaque``, devices, fifos, and ``raw_entry`` for hostile input: ``../`` names, absolute names,
duplicates, sizes the data does not back) or from a directory tree. Images get an OCI or Docker v2
schema 2 manifest; several images make an index. Everything can be written as an OCI layout
directory, an oci-archive or a docker-archive (``docker save`` format).

Output is deterministic — fixed mtimes, zero owners unless asked, gzip without timestamp, JSON
with sorted keys — so a digest computed once stays valid in assertions.

    layer = build_layer([file("etc/os-release", 'ID=debian\\nVERSION_ID="12"\\n')])
    image = build_image([layer], ConfigSpec(cmd=("sh",)))
    write_oci_layout(tmp_path / "layout", image, tag="1.0")
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Compression = Literal["gzip", "zstd", "none"]
Style = Literal["oci", "docker"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# ---- tar entries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TarEntry:
    """One tar header (+ data). ``declared_size`` makes the header claim a size the data lacks."""

    name: str
    type: bytes = tarfile.REGTYPE
    content: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    mtime: int = 0
    declared_size: int | None = None


def _clean(path: str) -> str:
    """Friendly helpers accept ``/etc/x`` and ``./etc/x``; layers store ``etc/x``."""
    cleaned = path
    while cleaned.startswith(("/", "./")):
        cleaned = cleaned[1:] if cleaned.startswith("/") else cleaned[2:]
    if not cleaned:
        raise ValueError(f"empty path {path!r}")
    return cleaned


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else content


def file(path: str, content: bytes | str = b"", *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> TarEntry:
    return TarEntry(name=_clean(path), content=_as_bytes(content), mode=mode, uid=uid, gid=gid)


def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarEntry:
    return TarEntry(name=_clean(path).rstrip("/") + "/", type=tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid)


def symlink(path: str, target: str) -> TarEntry:
    return TarEntry(name=_clean(path), type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(path: str, target: str) -> TarEntry:
    return TarEntry(name=_clean(path), type=tarfile.LNKTYPE, linkname=_clean(target))


def whiteout(path: str) -> TarEntry:
    """Deletes ``path`` from the lower layers: an empty ``.wh.<name>`` file beside it."""
    parent, _, name = _clean(path).rstrip("/").rpartition("/")
    return TarEntry(name=f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(path: str) -> TarEntry:
    """Hides everything the lower layers had under directory ``path``."""
    return TarEntry(name=f"{_clean(path).rstrip('/')}/.wh..wh..opq")


def char_device(path: str, major: int, minor: int, *, mode: int = 0o666) -> TarEntry:
    return TarEntry(name=_clean(path), type=tarfile.CHRTYPE, devmajor=major, devminor=minor, mode=mode)


def block_device(path: str, major: int, minor: int, *, mode: int = 0o660) -> TarEntry:
    return TarEntry(name=_clean(path), type=tarfile.BLKTYPE, devmajor=major, devminor=minor, mode=mode)


def fifo(path: str, *, mode: int = 0o644) -> TarEntry:
    return TarEntry(name=_clean(path), type=tarfile.FIFOTYPE, mode=mode)


def raw_entry(
    name: str,
    content: bytes | str = b"",
    *,
    type: bytes = tarfile.REGTYPE,
    linkname: str = "",
    mode: int = 0o644,
    declared_size: int | None = None,
) -> TarEntry:
    """An entry written exactly as given: ``../../etc/passwd``, ``/abs``, a symlink out of the root…"""
    return TarEntry(
        name=name,
        type=type,
        content=_as_bytes(content),
        linkname=linkname,
        mode=mode,
        declared_size=declared_size,
    )


def tar_bytes(entries: Iterable[TarEntry]) -> bytes:
    """Serialize entries in the given order (order matters: duplicates, whiteouts) as a PAX tar."""
    out = io.BytesIO()
    for entry in entries:
        info = tarfile.TarInfo(entry.name)
        info.type = entry.type
        info.mode = entry.mode
        info.uid, info.gid = entry.uid, entry.gid
        info.uname, info.gname = entry.uname, entry.gname
        info.linkname = entry.linkname
        info.devmajor, info.devminor = entry.devmajor, entry.devminor
        info.mtime = entry.mtime
        data = entry.content if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else b""
        info.size = entry.declared_size if entry.declared_size is not None else len(data)
        out.write(info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape"))
        out.write(data)
        if len(data) % tarfile.BLOCKSIZE:
            out.write(b"\0" * (tarfile.BLOCKSIZE - len(data) % tarfile.BLOCKSIZE))
    out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def entries_from_directory(root: Path, *, keep_owners: bool = False) -> list[TarEntry]:
    """A directory tree as entries, sorted by path; hard links become link entries to the first name."""
    found: list[TarEntry] = []
    first_name_of_inode: dict[tuple[int, int], str] = {}
    for current, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(current)
        relative_dir = base.relative_to(root).as_posix()
        names = sorted([*((d, True) for d in dirnames), *((f, False) for f in filenames)])
        for name, _is_dir in names:
            path = base / name
            relative = f"{relative_dir}/{name}" if relative_dir != "." else name
            info = path.lstat()
            owner = {"uid": info.st_uid, "gid": info.st_gid} if keep_owners else {}
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found.append(symlink(relative, os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                found.append(directory(relative, mode=mode, **owner))
            elif stat.S_ISREG(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in first_name_of_inode:
                    found.append(hardlink(relative, first_name_of_inode[key]))
                    continue
                first_name_of_inode[key] = relative
                found.append(file(relative, path.read_bytes(), mode=mode, **owner))
            elif stat.S_ISFIFO(info.st_mode):
                found.append(fifo(relative, mode=mode))
            elif stat.S_ISCHR(info.st_mode):
                found.append(char_device(relative, os.major(info.st_rdev), os.minor(info.st_rdev), mode=mode))
            elif stat.S_ISBLK(info.st_mode):
                found.append(
                    block_device(relative, os.major(info.st_rdev), os.minor(info.st_rdev), mode=mode)
                )
    return found


# ---- blobs, layers, images, indexes ----------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


@dataclass(frozen=True)
class Layer:
    tar: bytes = field(repr=False)
    compression: Compression
    blob_data: bytes = field(repr=False)

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob_data)

    @property
    def size(self) -> int:
        return len(self.blob_data)

    def media_type(self, style: Style) -> str:
        if style == "oci":
            return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[self.compression]
        if self.compression == "zstd":
            raise ValueError("Docker schema 2 has no zstd layer media type; use style='oci'")
        return DOCKER_LAYER_GZIP if self.compression == "gzip" else DOCKER_LAYER

    def blob(self, style: Style) -> Blob:
        return Blob(self.media_type(style), self.blob_data)


def build_layer(entries: Iterable[TarEntry], compression: Compression = "gzip") -> Layer:
    tar = tar_bytes(entries)
    return Layer(tar=tar, compression=compression, blob_data=compress(tar, compression))


def layer_from_directory(
    root: Path, compression: Compression = "gzip", *, keep_owners: bool = False
) -> Layer:
    return build_layer(entries_from_directory(root, keep_owners=keep_owners), compression)


@dataclass(frozen=True)
class ConfigSpec:
    """What goes into the image config. ``history=None`` writes one entry per layer."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    env: tuple[str, ...] = (DEFAULT_PATH_ENV,)
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None
    created: str = EPOCH
    author: str | None = None
    history: tuple[Mapping[str, Any], ...] | None = None

    def platform(self) -> dict[str, str]:
        platform = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            platform["variant"] = self.variant
        return platform

    def document(self, diff_ids: Sequence[str]) -> dict[str, Any]:
        container: dict[str, Any] = {"Env": list(self.env)}
        if self.cmd is not None:
            container["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            container["Entrypoint"] = list(self.entrypoint)
        if self.user:
            container["User"] = self.user
        if self.working_dir:
            container["WorkingDir"] = self.working_dir
        if self.exposed_ports:
            container["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.labels:
            container["Labels"] = dict(self.labels)
        if self.volumes:
            container["Volumes"] = {volume: {} for volume in self.volumes}
        if self.stop_signal:
            container["StopSignal"] = self.stop_signal
        history = (
            [dict(entry) for entry in self.history]
            if self.history is not None
            else [{"created": self.created, "created_by": f"layer {i + 1}"} for i in range(len(diff_ids))]
        )
        document: dict[str, Any] = {
            **self.platform(),
            "created": self.created,
            "config": container,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
            "history": history,
        }
        if self.author:
            document["author"] = self.author
        return document


@dataclass(frozen=True)
class Image:
    layers: tuple[Layer, ...]
    config: Blob
    manifest: Blob
    style: Style
    platform: Mapping[str, str]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        return [self.config, *(layer.blob(self.style) for layer in self.layers), self.manifest]

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return self.manifest.descriptor(**extra)


@dataclass(frozen=True)
class ImageIndex:
    images: tuple[Image, ...]
    index: Blob

    @property
    def digest(self) -> str:
        return self.index.digest

    def blobs(self) -> list[Blob]:
        return [blob for image in self.images for blob in image.blobs()] + [self.index]

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return self.index.descriptor(**extra)


def build_image(
    layers: Sequence[Layer],
    config: ConfigSpec | None = None,
    *,
    style: Style = "oci",
    annotations: Mapping[str, str] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> Image:
    """``config_overrides`` patches the config document (e.g. wrong diff_ids for negative tests)."""
    spec = config or ConfigSpec()
    document = spec.document([layer.diff_id for layer in layers])
    document.update(config_overrides or {})
    config_blob = Blob(OCI_CONFIG if style == "oci" else DOCKER_CONFIG, canonical_json(document))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if style == "oci" else DOCKER_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.blob(style).descriptor() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_blob = Blob(manifest["mediaType"], canonical_json(manifest))
    return Image(tuple(layers), config_blob, manifest_blob, style, spec.platform())


def build_index(
    images: Sequence[Image], *, style: Style = "oci", annotations: Mapping[str, str] | None = None
) -> ImageIndex:
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX if style == "oci" else DOCKER_MANIFEST_LIST,
        "manifests": [image.descriptor(platform=dict(image.platform)) for image in images],
    }
    if annotations:
        index["annotations"] = dict(annotations)
    return ImageIndex(tuple(images), Blob(index["mediaType"], canonical_json(index)))


def single_layer_image(
    entries: Iterable[TarEntry],
    config: ConfigSpec | None = None,
    *,
    compression: Compression = "gzip",
    style: Style = "oci",
) -> Image:
    return build_image([build_layer(entries, compression)], config, style=style)


# ---- writers ---------------------------------------------------------------------------------------

Target = Image | ImageIndex


def layout_files(targets: Mapping[str, Target]) -> dict[str, bytes]:
    """The files of an OCI image layout holding ``targets`` under their tags (relative path → bytes)."""
    files: dict[str, bytes] = {"oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"})}
    manifests = []
    for tag, target in targets.items():
        for blob in target.blobs():
            algorithm, hexdigest = blob.digest.split(":", 1)
            files[f"blobs/{algorithm}/{hexdigest}"] = blob.data
        manifests.append(target.descriptor(annotations={REF_NAME_ANNOTATION: tag}))
    files["index.json"] = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return files


def write_oci_layout(dest: Path, target: Target, *, tag: str = "latest") -> Path:
    """Write (or add to) an OCI layout directory; an existing index.json keeps its other tags."""
    targets: dict[str, Target] = {tag: target}
    existing: list[dict[str, Any]] = []
    index_path = dest / "index.json"
    if index_path.exists():
        existing = [
            entry
            for entry in json.loads(index_path.read_bytes()).get("manifests", [])
            if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) != tag
        ]
    files = layout_files(targets)
    if existing:
        index = json.loads(files["index.json"])
        index["manifests"] = existing + index["manifests"]
        files["index.json"] = canonical_json(index)
    for relative, data in sorted(files.items()):
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def _deterministic_tar(files: Mapping[str, bytes]) -> bytes:
    entries: list[TarEntry] = []
    directories: set[str] = set()
    for relative in sorted(files):
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in directories:
                directories.add(parent)
                entries.append(directory(parent))
        entries.append(file(relative, files[relative]))
    return tar_bytes(entries)


def write_oci_archive(dest: Path, target: Target, *, tag: str = "latest") -> Path:
    """An oci-archive: the OCI layout, tarred (uncompressed, deterministic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(_deterministic_tar(layout_files({tag: target})))
    return dest


def docker_archive_files(image: Image, repo_tags: Sequence[str]) -> dict[str, bytes]:
    config_name = image.config.digest.split(":", 1)[1] + ".json"
    layer_names = [layer.diff_id.split(":", 1)[1] + ".tar" for layer in image.layers]
    files: dict[str, bytes] = {config_name: image.config.data}
    for name, layer in zip(layer_names, image.layers, strict=True):
        files[name] = layer.tar
    manifest = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": layer_names}]
    files["manifest.json"] = canonical_json(manifest)
    return files


def write_docker_archive(
    dest: Path, image: Image, *, repo_tags: Sequence[str] = ("example.test/image:latest",)
) -> Path:
    """``docker save`` format: manifest.json, ``<config hex>.json``, uncompressed ``<diff_id hex>.tar``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(_deterministic_tar(docker_archive_files(image, repo_tags)))
    return dest
