"""Image sources: a registry, an OCI layout directory, an OCI archive, a ``docker save`` archive.

Each source answers two questions: which manifest (and config) is the image, and how to open a
blob. Digest verification is not the source's job: the reader verifies every blob the same way,
whatever it came from. Sources validate every name they are handed (digests are checked against a
strict pattern before they become paths; archive members must be regular files with safe names).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from portwarden.core.errors import (
    ImageNotFoundError,
    ImageSourceError,
    InvalidReferenceError,
    ManifestError,
    RegistryUnavailableError,
    SinglePlatformMismatchError,
)
from portwarden.core.image import manifest as mf
from portwarden.core.image.digest import digest_bytes, split_digest, verify_bytes
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.reference import ImageReference, SourceKind, SourceSpec
from portwarden.core.image.replay import LayoutRead
from portwarden.core.model.base import ValueObject

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import RegistryClient


class ResolvedImage(ValueObject):
    """The image a source resolved to, for one platform."""

    source_kind: SourceKind
    location: str
    reference: ImageReference | None = None
    index_digest: str | None = None
    manifest_digest: str
    manifest_media_type: str
    manifest: mf.Manifest
    config_digest: str
    config_document: mf.ImageConfigDocument
    platform: str

    @property
    def layers(self) -> tuple[mf.Descriptor, ...]:
        return self.manifest.layers


class ImageSource(Protocol):
    spec: SourceSpec

    def resolve(self, platform: mf.Platform | None) -> ResolvedImage:
        """The image for ``platform``. None asks for no platform in particular: an index gives its
        ``linux/amd64`` image, a single-platform image is taken whatever its platform. A platform
        that a single-platform image does not have is an error naming the one it has."""
        ...

    def open_blob(self, descriptor: mf.Descriptor) -> BinaryIO:
        """The raw (unverified) bytes of a blob."""
        ...

    def close(self) -> None: ...


def layout_reads(source: ImageSource) -> tuple[LayoutRead, ...] | None:
    """What resolving ``source`` read, when it is a layout directory (``replay``); else None."""
    return source.layout_reads() if isinstance(source, OciLayoutSource) else None


def _read_capped(stream: BinaryIO, cap: int, what: str) -> bytes:
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise ManifestError(f"{what} is larger than {cap} bytes")
    return data


class _ManifestWalker:
    """Shared by every source: from a top-level document, down through indexes, to one manifest."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits

    def walk(
        self,
        content: bytes,
        media_type: str | None,
        digest: str,
        platform: mf.Platform | None,
        fetch_by_digest: Callable[[mf.Descriptor], tuple[bytes, str | None]],
    ) -> tuple[str | None, str, str, mf.Manifest]:
        """Returns (index digest, manifest digest, manifest media type, manifest)."""
        index_digest: str | None = None
        for _depth in range(4):  # nested indexes exist (attestations, OCI layouts); loops do not terminate
            kind = mf.detect_media_type(content, media_type)
            if kind in mf.MANIFEST_TYPES:
                return index_digest, digest, kind, mf.parse_manifest(content)
            index = mf.parse_index(content)
            if index_digest is None:
                index_digest = digest
            if len(index.manifests) == 1 and index.manifests[0].platform is None:
                chosen = index.manifests[0]
            else:
                chosen = mf.select_platform(index, platform or DEFAULT_PLATFORM)
            content, media_type = fetch_by_digest(chosen)
            verify_bytes(content, chosen.digest, "manifest")
            media_type = media_type or chosen.media_type
            digest = chosen.digest
        raise ManifestError("image indexes nest too deeply")

    def config(self, content: bytes, descriptor: mf.Descriptor) -> mf.ImageConfigDocument:
        verify_bytes(content, descriptor.digest, "image config")
        return mf.parse_config(content)


DEFAULT_PLATFORM = mf.Platform(os="linux", architecture="amd64")


def _platform_text(document: mf.ImageConfigDocument, wanted: mf.Platform | None) -> str:
    """The platform the image config declares, checked against the one asked for (if any).

    Indexes were already narrowed to ``wanted``; this catches the single-platform image that was
    asked for a platform it does not have, which would otherwise be analyzed silently.
    """
    if not (document.os and document.architecture):
        return str(wanted or DEFAULT_PLATFORM)
    actual = mf.Platform(os=document.os, architecture=document.architecture, variant=document.variant)
    if wanted is not None and (
        actual.os != wanted.os
        or actual.architecture != wanted.architecture
        or (wanted.variant is not None and actual.variant is not None and actual.variant != wanted.variant)
    ):
        raise SinglePlatformMismatchError(str(wanted), str(actual))
    return str(actual)


class _ImageDeadline:
    """The wall-clock budget of one image read (``max_image_read_seconds``), from the source's opening.

    Blob streams are watched: when the budget is spent, a watchdog aborts every open download (the
    registry client's streams can be cut from another thread), and reads fail naming the host.
    """

    def __init__(self, seconds: float, host: str) -> None:
        self.seconds = seconds
        self.host = host
        self.expires_at = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at

    def error(self, what: str) -> ImageSourceError:
        return RegistryUnavailableError(
            f"{what}: reading the image from {self.host} did not finish within {self.seconds:g} s "
            "(max_image_read_seconds)"
        )

    def check(self, what: str) -> None:
        if self.expired():
            raise self.error(what)


class _DeadlineStream(io.RawIOBase):
    """A blob stream that stops at the image deadline, even in the middle of a blocked read."""

    def __init__(self, inner: BinaryIO, deadline: _ImageDeadline, what: str) -> None:
        super().__init__()
        self._inner = inner
        self._deadline = deadline
        self._what = what
        self._timer = threading.Timer(max(0.0, deadline.expires_at - time.monotonic()), self._abort)
        self._timer.daemon = True
        self._timer.start()

    def _abort(self) -> None:
        abort = getattr(self._inner, "abort", None)
        if callable(abort):
            abort()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._deadline.check(self._what)
        try:
            data = self._inner.read(-1 if size is None else size)
        except (ImageSourceError, OSError) as exc:
            if self._deadline.expired():
                raise self._deadline.error(self._what) from exc
            raise
        if not data and self._deadline.expired():
            raise self._deadline.error(self._what)  # a cut connection can look like an early end
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._timer.cancel()
            self._inner.close()
        super().close()


class RegistrySource:
    def __init__(self, spec: SourceSpec, client: RegistryClient, limits: SafetyLimits) -> None:
        if spec.reference is None:
            raise ImageSourceError(f"{spec} has no image reference")
        self.spec = spec
        self._ref = spec.reference
        self._client = client
        self._limits = limits
        self._deadline = _ImageDeadline(limits.max_image_read_seconds, spec.reference.registry)

    def resolve(self, platform: mf.Platform | None) -> ResolvedImage:
        walker = _ManifestWalker(self._limits)
        self._deadline.check(f"manifest {self._ref}")
        top = self._client.fetch_manifest(self._ref, mf.ACCEPT)
        if len(top.content) > self._limits.max_manifest_bytes:
            raise ManifestError(
                f"manifest of {self._ref} is larger than {self._limits.max_manifest_bytes} bytes"
            )
        top_digest = digest_bytes(top.content)
        if self._ref.digest is not None:
            verify_bytes(top.content, self._ref.digest, "manifest")
            top_digest = self._ref.digest

        def fetch(descriptor: mf.Descriptor) -> tuple[bytes, str | None]:
            self._deadline.check(f"manifest {descriptor.digest}")
            fetched = self._client.fetch_manifest(self._ref.with_digest(descriptor.digest), mf.ACCEPT)
            return fetched.content, fetched.media_type

        index_digest, digest, media_type, manifest = walker.walk(
            top.content, top.media_type, top_digest, platform, fetch
        )
        with self.open_blob(manifest.config) as stream:
            config_bytes = _read_capped(stream, self._limits.max_config_bytes, "image config")
        document = walker.config(config_bytes, manifest.config)
        return ResolvedImage(
            source_kind=SourceKind.REGISTRY,
            location=str(self._ref),
            reference=self._ref,
            index_digest=index_digest,
            manifest_digest=digest,
            manifest_media_type=media_type,
            manifest=manifest,
            config_digest=manifest.config.digest,
            config_document=document,
            platform=_platform_text(document, platform),
        )

    def open_blob(self, descriptor: mf.Descriptor) -> BinaryIO:
        what = f"blob {descriptor.digest}"
        self._deadline.check(what)
        stream = self._client.open_blob(self._ref, descriptor.digest)
        return cast(BinaryIO, _DeadlineStream(stream, self._deadline, what))

    def close(self) -> None:
        return None


class _LayoutReader(Protocol):
    def read_file(self, relative: str, cap: int) -> bytes: ...

    def open_file(self, relative: str) -> BinaryIO: ...

    def exists(self, relative: str) -> bool: ...


class _DirectoryLayout:
    def __init__(self, root: Path) -> None:
        self.root = root
        # What resolving learned from the directory, in order: the same answers mean the same image
        # (``replay``). Blob streams opened for layers are not resolution and are not recorded.
        self.reads: list[LayoutRead] = []

    def _path(self, relative: str) -> Path:
        # Names come from our own digest validation or fixed names; still refuse anything odd.
        if relative.startswith("/") or ".." in relative.split("/"):
            raise ImageSourceError(f"refusing layout path {relative!r}")
        return self.root / relative

    def exists(self, relative: str) -> bool:
        present = self._path(relative).is_file()
        self.reads.append(LayoutRead(relative, present))
        return present

    def read_file(self, relative: str, cap: int) -> bytes:
        path = self._path(relative)
        if not path.is_file():
            raise ImageNotFoundError(f"{relative} is missing from the OCI layout {self.root}")
        with path.open("rb") as handle:
            data = _read_capped(handle, cap, relative)  # type: ignore[arg-type]
        self.reads.append(LayoutRead.of_bytes(relative, data))
        return data

    def open_file(self, relative: str) -> BinaryIO:
        path = self._path(relative)
        if not path.is_file():
            raise ImageNotFoundError(f"blob {relative} is missing from the OCI layout {self.root}")
        return path.open("rb")


class _MemberWindow(io.RawIOBase):
    """One archive member's bytes, read through its own file descriptor with ``os.pread``.

    Every blob read gets its own window: layers are read on a thread pool, and a file object shared
    between threads would interleave their seeks (wrong digests, "not a tar archive"). ``pread``
    never moves a shared offset, and the window never reads past the member's end.
    """

    def __init__(self, archive_path: Path, offset: int, size: int, name: str) -> None:
        super().__init__()
        self._name = name
        self._archive_path = archive_path
        self._fd = os.open(archive_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._start = offset
        self._end = offset + size
        self._position = offset

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._end - self._position
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        if wanted <= 0:
            return b""
        data = os.pread(self._fd, wanted, self._position)
        if not data:
            raise ImageSourceError(
                f"{self._archive_path} ends inside {self._name} (the archive was truncated or changed)"
            )
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class _CompressedMemberReader(io.RawIOBase):
    """A member of a compressed archive, through its own ``tarfile`` (and so its own file object).

    A compressed archive has no byte offsets to ``pread`` from: each reader decompresses up to its
    member on its own stream, so parallel readers never share a position.
    """

    def __init__(self, archive_path: Path, member: tarfile.TarInfo) -> None:
        super().__init__()
        self._tar = tarfile.open(archive_path, mode="r:*")  # noqa: SIM115 - closed by close()
        handle = self._tar.extractfile(member)
        if handle is None:  # pragma: no cover - regular members always have a handle
            self._tar.close()
            raise ImageSourceError(f"cannot read {member.name} from {archive_path}")
        self._handle = handle

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._handle.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self._handle.read()

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
            self._tar.close()
        super().close()


_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class _TarLayout:
    """Random access to the regular-file members of an (uncompressed or compressed) tar archive.

    The archive is indexed once (name → member); it keeps no open file. Every ``open_file`` opens
    the archive again, so concurrent blob reads never share a file position.
    """

    def __init__(self, archive_path: Path) -> None:
        self.archive_path = archive_path
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            with archive_path.open("rb") as probe:
                self._compressed = probe.read(6).startswith(_COMPRESSED_MAGIC)
            with tarfile.open(archive_path, mode="r:*") as archive:
                for member in archive:
                    name = member.name.lstrip("./") if member.name.startswith("./") else member.name
                    if (
                        member.isfile()
                        and not member.issparse()  # sparse members have no contiguous data
                        and not name.startswith("/")
                        and ".." not in name.split("/")
                    ):
                        self._members[name] = member
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImageSourceError(f"{archive_path} is not a readable tar archive ({exc})") from exc

    def exists(self, relative: str) -> bool:
        return relative in self._members

    def size(self, relative: str) -> int:
        member = self._members.get(relative)
        if member is None:
            raise ImageNotFoundError(f"{relative} is missing from the archive {self.archive_path}")
        return member.size

    def read_file(self, relative: str, cap: int) -> bytes:
        with self.open_file(relative) as handle:
            return _read_capped(handle, cap, relative)

    def open_file(self, relative: str) -> BinaryIO:
        member = self._members.get(relative)
        if member is None:
            raise ImageNotFoundError(f"{relative} is missing from the archive {self.archive_path}")
        try:
            if self._compressed:
                return cast(BinaryIO, _CompressedMemberReader(self.archive_path, member))
            return cast(BinaryIO, _MemberWindow(self.archive_path, member.offset_data, member.size, relative))
        except (tarfile.TarError, OSError) as exc:
            raise ImageSourceError(f"cannot read {relative} from {self.archive_path} ({exc})") from exc

    def close(self) -> None:
        return None  # nothing stays open between reads


def _is_digest(text: str) -> bool:
    try:
        split_digest(text)
    except ManifestError:
        return False
    return True


def _blob_path(digest: str) -> str:
    algorithm, hexdigest = split_digest(digest)
    return f"blobs/{algorithm}/{hexdigest}"


class OciLayoutSource:
    """``oci-dir:PATH`` (a directory) and ``oci-archive:PATH`` (the same layout, tarred)."""

    def __init__(self, spec: SourceSpec, layout: _LayoutReader, limits: SafetyLimits) -> None:
        self.spec = spec
        self._layout = layout
        self._limits = limits

    def resolve(self, platform: mf.Platform | None) -> ResolvedImage:
        if not self._layout.exists("oci-layout"):
            raise ImageSourceError(f"{self.spec.location} is not an OCI image layout (no oci-layout file)")
        index_bytes = self._layout.read_file("index.json", self._limits.max_manifest_bytes)
        index = mf.parse_index(index_bytes)
        if not index.manifests:
            raise ManifestError(f"{self.spec.location}: index.json lists no images")
        walker = _ManifestWalker(self._limits)

        def fetch(descriptor: mf.Descriptor) -> tuple[bytes, str | None]:
            content = self._layout.read_file(_blob_path(descriptor.digest), self._limits.max_manifest_bytes)
            return content, descriptor.media_type or None

        # index.json is the layout's own index: choose from it like from any index.
        index_digest, digest, media_type, manifest = walker.walk(
            index_bytes, mf.OCI_INDEX, digest_bytes(index_bytes), platform, fetch
        )
        config_bytes = self._layout.read_file(
            _blob_path(manifest.config.digest), self._limits.max_config_bytes
        )
        document = walker.config(config_bytes, manifest.config)
        return ResolvedImage(
            source_kind=self.spec.kind,
            location=self.spec.location,
            index_digest=None if index_digest == digest_bytes(index_bytes) else index_digest,
            manifest_digest=digest,
            manifest_media_type=media_type,
            manifest=manifest,
            config_digest=manifest.config.digest,
            config_document=document,
            platform=_platform_text(document, platform),
        )

    def open_blob(self, descriptor: mf.Descriptor) -> BinaryIO:
        return self._layout.open_file(_blob_path(descriptor.digest))

    def layout_reads(self) -> tuple[LayoutRead, ...] | None:
        """What resolving read from a layout directory (``replay``); None for an archive, whose
        members are found through its tar index."""
        if isinstance(self._layout, _DirectoryLayout):
            return tuple(self._layout.reads)
        return None

    def close(self) -> None:
        if isinstance(self._layout, _TarLayout):
            self._layout.close()


class DockerArchiveSource:
    """``docker-archive:PATH``: the ``docker save`` format.

    Newer Docker writes an OCI layout inside the archive (index.json + blobs/): then the real
    manifest and its digest are used. The classic format has only ``manifest.json`` naming a config
    file and layer tarballs; for it Portwarden builds the equivalent Docker v2 manifest (layer
    digests are the sha256 of each layer file, exactly what a registry push would produce for
    uncompressed layers) and the manifest digest is that document's digest.
    """

    def __init__(self, spec: SourceSpec, archive_path: Path, limits: SafetyLimits) -> None:
        self.spec = spec
        self._tar = _TarLayout(archive_path)
        self._limits = limits
        self._layer_files: dict[str, str] = {}

    def resolve(self, platform: mf.Platform | None) -> ResolvedImage:
        if self._tar.exists("index.json") and self._tar.exists("oci-layout"):
            inner = OciLayoutSource(self.spec, self._tar, self._limits)
            resolved = inner.resolve(platform)
            return resolved.model_copy(update={"source_kind": SourceKind.DOCKER_ARCHIVE})
        if not self._tar.exists("manifest.json"):
            raise ImageSourceError(f"{self.spec.location} is not a docker archive (no manifest.json)")
        entries = self._load_manifest_json()
        entry = entries[0]
        if len(entries) > 1:
            raise ManifestError(
                f"{self.spec.location} holds {len(entries)} images; save one image per archive "
                f"(found {', '.join(','.join(e.get('RepoTags') or ['<untagged>']) for e in entries)})"
            )
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise ManifestError(f"{self.spec.location}: manifest.json entry lacks Config or Layers")
        config_bytes = self._tar.read_file(config_name, self._limits.max_config_bytes)
        config_digest = digest_bytes(config_bytes)
        document = mf.parse_config(config_bytes)
        layers = []
        diff_ids = document.rootfs.diff_ids
        for position, name in enumerate(layer_names):
            if not isinstance(name, str):
                raise ManifestError(f"{self.spec.location}: manifest.json has a non-string layer name")
            claimed = diff_ids[position] if len(diff_ids) == len(layer_names) else None
            digest, size, media_type = self._describe_layer(name, claimed)
            self._layer_files[digest] = name
            layers.append(mf.Descriptor(mediaType=media_type, digest=digest, size=size))
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": mf.DOCKER_MANIFEST,
            "config": {"mediaType": mf.DOCKER_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in layers],
        }
        manifest_bytes = json.dumps(manifest_doc, indent=3).encode()
        manifest = mf.parse_manifest(manifest_bytes)
        tags = entry.get("RepoTags") or []
        reference = None
        if tags and isinstance(tags[0], str):
            try:
                reference = ImageReference.parse(tags[0])
            except InvalidReferenceError:  # an odd tag in an archive must not stop the analysis
                reference = None
        return ResolvedImage(
            source_kind=SourceKind.DOCKER_ARCHIVE,
            location=self.spec.location,
            reference=reference,
            manifest_digest=digest_bytes(manifest_bytes),
            manifest_media_type=mf.DOCKER_MANIFEST,
            manifest=manifest,
            config_digest=config_digest,
            config_document=document,
            platform=_platform_text(document, platform),
        )

    def _load_manifest_json(self) -> list[dict[str, Any]]:
        raw = self._tar.read_file("manifest.json", self._limits.max_manifest_bytes)
        try:
            entries = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{self.spec.location}: malformed manifest.json ({exc})") from exc
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise ManifestError(f"{self.spec.location}: manifest.json is not a list of images")
        return entries

    def _describe_layer(self, name: str, diff_id: str | None) -> tuple[str, int, str]:
        """(digest, size, media type) of a layer file.

        An uncompressed layer's digest is its diff_id: the config's claim is taken without reading
        the layer twice, and the reader checks it like every digest, against the bytes it reads.
        A compressed layer is hashed here, its digest being nobody's claim.
        """
        with self._tar.open_file(name) as handle:
            head = handle.read(4)
        if head.startswith(b"\x1f\x8b"):
            media_type = mf.DOCKER_LAYER_GZIP
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            media_type = mf.OCI_LAYER_ZSTD
        else:
            media_type = "application/vnd.docker.image.rootfs.diff.tar"
            if diff_id is not None and diff_id.startswith("sha256:") and _is_digest(diff_id):
                return diff_id, self._tar.size(name), media_type
        hasher = hashlib.sha256()
        size = 0
        with self._tar.open_file(name) as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
                size += len(chunk)
        return f"sha256:{hasher.hexdigest()}", size, media_type

    def open_blob(self, descriptor: mf.Descriptor) -> BinaryIO:
        name = self._layer_files.get(descriptor.digest)
        if name is not None:
            return self._tar.open_file(name)
        return self._tar.open_file(_blob_path(descriptor.digest))

    def close(self) -> None:
        self._tar.close()


def open_source(
    spec: SourceSpec,
    limits: SafetyLimits,
    registry_client: Callable[[ImageReference], RegistryClient] | None = None,
) -> ImageSource:
    """The source for a parsed source string. Registry access needs a client factory (an adapter)."""
    if spec.kind == SourceKind.REGISTRY:
        if registry_client is None or spec.reference is None:
            raise ImageSourceError(f"no registry client available for {spec}")
        return RegistrySource(spec, registry_client(spec.reference), limits)
    if spec.kind == SourceKind.SBOM:
        raise ImageSourceError(
            f"{spec} is an SBOM, not an image: it can be scanned (`portwarden scan {spec}`), "
            "not read as layers"
        )
    path = Path(spec.location)
    if not path.exists():
        raise ImageNotFoundError(f"{spec.kind.value} {spec.location} does not exist")
    if spec.kind == SourceKind.OCI_DIR:
        if not path.is_dir():
            raise ImageSourceError(f"oci-dir:{spec.location} is not a directory")
        return OciLayoutSource(spec, _DirectoryLayout(path), limits)
    if not path.is_file():
        raise ImageSourceError(f"{spec.kind.value}:{spec.location} is not a file")
    if spec.kind == SourceKind.OCI_ARCHIVE:
        return OciLayoutSource(spec, _TarLayout(path), limits)
    return DockerArchiveSource(spec, path, limits)


__all__ = [
    "DockerArchiveSource",
    "ImageSource",
    "OciLayoutSource",
    "RegistrySource",
    "ResolvedImage",
    "open_source",
]
