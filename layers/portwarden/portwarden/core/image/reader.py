"""Reading a resolved image: its layers (in parallel, each streamed once) and the squashed view."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from portwarden.core.errors import StoreError
from portwarden.core.image.capture import CapturePolicy, ContentScanner
from portwarden.core.image.content import ContentStore
from portwarden.core.image.fragment import LayerIndex
from portwarden.core.image.layer import read_layer
from portwarden.core.image.layer_cache import LayerCache
from portwarden.core.image.limits import SafetyLimits, check_layer_count
from portwarden.core.image.manifest import Descriptor
from portwarden.core.image.resolver import FileResolver
from portwarden.core.image.sources import ImageSource, ResolvedImage
from portwarden.core.image.squash import squash
from portwarden.core.model.files import FileRecord

ProgressCallback = Callable[[str, int], None]
logger = logging.getLogger(__name__)


@dataclass
class SquashedImage:
    """The final filesystem of an image, with its captured contents and what went wrong reading it."""

    resolved: ResolvedImage
    layers: list[LayerIndex]
    records: dict[str, FileRecord]
    contents: ContentStore
    warnings: list[str] = field(default_factory=list)

    def resolver(self) -> FileResolver:
        return FileResolver(self.records, self.contents)

    def close(self) -> None:
        self.contents.close()


def read_one_layer(
    source: ImageSource,
    descriptor: Descriptor,
    diff_id: str | None,
    capture: CapturePolicy,
    contents: ContentStore,
    limits: SafetyLimits,
    on_progress: ProgressCallback | None = None,
    scanners: Sequence[ContentScanner] = (),
    cache: LayerCache | None = None,
) -> LayerIndex:
    cache_warning = None
    if cache is not None:
        lookup = cache.lookup(descriptor.digest, contents, diff_id)
        if lookup.index is not None:
            return lookup.index
        cache_warning = lookup.warning

    def progress(count: int) -> None:
        if on_progress is not None:
            on_progress(descriptor.digest, count)

    with source.open_blob(descriptor) as raw:
        index = read_layer(
            raw,
            digest=descriptor.digest,
            size=descriptor.size,
            media_type=descriptor.media_type,
            capture=capture,
            contents=contents,
            limits=limits,
            expected_diff_id=diff_id,
            on_progress=progress,
            scanners=scanners,
        )
    if cache is not None:
        try:
            cache.save(index, capture, contents)
        except StoreError as exc:  # an unwritable cache costs the next read of this layer, not this one
            logger.warning("could not cache the fragment of layer %s: %s", descriptor.digest, exc)
    if cache_warning is not None:
        # Reported with this analysis only: the fragment just saved is sound and carries no warning.
        index = index.with_warning(cache_warning)
    return index


def read_image(
    source: ImageSource,
    resolved: ResolvedImage,
    *,
    capture: CapturePolicy,
    limits: SafetyLimits,
    work_dir: Path | None = None,
    workers: int = 3,
    on_progress: ProgressCallback | None = None,
    scanners: Sequence[ContentScanner] = (),
    cache: LayerCache | None = None,
) -> SquashedImage:
    """Read every layer (or take its fragment from ``cache``) and squash them in order."""
    check_layer_count(resolved, limits)
    contents = ContentStore(work_dir)
    diff_ids: Sequence[str] = resolved.config_document.rootfs.diff_ids
    pairs = list(zip(resolved.layers, diff_ids, strict=True))
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="layer") as pool:
            # The largest layers start first: with more layers than workers, the read ends when its
            # longest layer does, and a large layer started last would leave the other cores idle
            # at the end. The results are taken in manifest order, the order of the squash.
            by_size = sorted(range(len(pairs)), key=lambda position: -pairs[position][0].size)
            futures = {
                position: pool.submit(
                    read_one_layer,
                    source,
                    pairs[position][0],
                    pairs[position][1],
                    capture,
                    contents,
                    limits,
                    on_progress,
                    scanners,
                    cache,
                )
                for position in by_size
            }
            layers = [futures[position].result() for position in range(len(pairs))]
    except BaseException:
        contents.close()
        raise
    records, warnings = squash(layers)
    layers = [layer.without_records() for layer in layers]
    all_warnings = [w for layer in layers for w in layer.warnings] + warnings
    return SquashedImage(
        resolved=resolved, layers=layers, records=records, contents=contents, warnings=all_warnings
    )
