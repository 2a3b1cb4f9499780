"""Use cases of image acquisition: inspect an image, list its files."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from portwarden.core.image.capture import CapturePolicy, ContentScanner
from portwarden.core.image.layer_cache import LayerCache
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.manifest import ImageConfig, Platform, parse_platform
from portwarden.core.image.reference import ImageReference, SourceSpec
from portwarden.core.image.sources import ImageSource, ResolvedImage, open_source
from portwarden.core.model.analysis import FileEntry

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.image.reader import ProgressCallback, SquashedImage
    from portwarden.core.ports import RegistryClient

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class ImageAccess:
    """What acquiring an image needs from the outside: limits, a registry client factory, scratch space."""

    limits: SafetyLimits = field(default_factory=SafetyLimits)
    registry_client: Callable[[ImageReference], RegistryClient] | None = None
    work_dir: Path | None = None
    workers: int = 3
    on_progress: ProgressCallback | None = None


class _Output(BaseModel):
    # Built on first use: the inspect and files commands use these; an analysis only imports them.
    model_config = ConfigDict(frozen=True, defer_build=True)


class LayerSummary(_Output):
    digest: str
    size: int
    media_type: str


class SourceInfo(_Output):
    type: str
    location: str
    reference: str | None = None
    index_digest: str | None = None
    manifest_digest: str
    config_digest: str
    platform: str

    @classmethod
    def of(cls, resolved: ResolvedImage) -> SourceInfo:
        return cls(
            type=resolved.source_kind.value,
            location=resolved.location,
            reference=str(resolved.reference) if resolved.reference else None,
            index_digest=resolved.index_digest,
            manifest_digest=resolved.manifest_digest,
            config_digest=resolved.config_digest,
            platform=resolved.platform,
        )


class ImageInspection(_Output):
    source: SourceInfo
    manifest_digest: str
    config_digest: str
    platform: str
    layers: tuple[LayerSummary, ...]
    config: ImageConfig


class FileListing(_Output):
    source: SourceInfo
    files: tuple[FileEntry, ...]
    warnings: tuple[str, ...]


def _platform(text: str | None) -> Platform | None:
    """The platform asked for; None when none was (an index then gives DEFAULT_PLATFORM)."""
    return parse_platform(text) if text else None


def resolve_image(source_text: str, access: ImageAccess, platform: str | None = None) -> ResolvedImage:
    spec = SourceSpec.parse(source_text)
    source = open_source(spec, access.limits, access.registry_client)
    try:
        return source.resolve(_platform(platform))
    finally:
        source.close()


def inspect_image(source_text: str, access: ImageAccess, platform: str | None = None) -> ImageInspection:
    """Manifest, config and layer list, without reading any layer."""
    resolved = resolve_image(source_text, access, platform)
    return ImageInspection(
        source=SourceInfo.of(resolved),
        manifest_digest=resolved.manifest_digest,
        config_digest=resolved.config_digest,
        platform=resolved.platform,
        layers=tuple(
            LayerSummary(digest=layer.digest, size=layer.size, media_type=layer.media_type)
            for layer in resolved.layers
        ),
        config=ImageConfig.from_document(resolved.config_document),
    )


def acquire_image(
    source_text: str,
    access: ImageAccess,
    capture: CapturePolicy,
    platform: str | None = None,
    *,
    scanners: Sequence[ContentScanner] = (),
    cache: LayerCache | None = None,
) -> SquashedImage:
    """Resolve the image and read every layer once into the squashed filesystem."""
    with opened_image(source_text, access, platform) as (source, resolved):
        return read_resolved(source, resolved, access, capture, scanners=scanners, cache=cache)


@contextmanager
def opened_image(
    source_text: str, access: ImageAccess, platform: str | None = None
) -> Iterator[tuple[ImageSource, ResolvedImage]]:
    """The open source and its resolved image (manifest and config verified; no layer read yet)."""
    spec = SourceSpec.parse(source_text)
    source = open_source(spec, access.limits, access.registry_client)
    try:
        yield source, source.resolve(_platform(platform))
    finally:
        source.close()


def read_resolved(
    source: ImageSource,
    resolved: ResolvedImage,
    access: ImageAccess,
    capture: CapturePolicy,
    *,
    scanners: Sequence[ContentScanner] = (),
    cache: LayerCache | None = None,
) -> SquashedImage:
    """Read every layer of a resolved image once (or take its fragment from ``cache``) and squash."""
    # Imported here: resolving an image (and answering from a stored document) needs no layer reader.
    from portwarden.core.image.reader import read_image

    return read_image(
        source,
        resolved,
        capture=capture,
        limits=access.limits,
        work_dir=access.work_dir,
        workers=access.workers,
        on_progress=access.on_progress,
        scanners=scanners,
        cache=cache,
    )


def list_files(source_text: str, access: ImageAccess, platform: str | None = None) -> FileListing:
    """Every file of the squashed filesystem with its metadata and sha256."""
    image = acquire_image(source_text, access, CapturePolicy(), platform)
    try:
        files = tuple(
            FileEntry.from_record(image.records[path]) for path in sorted(image.records) if path != "/"
        )
        return FileListing(source=SourceInfo.of(image.resolved), files=files, warnings=tuple(image.warnings))
    finally:
        image.close()
