"""Safety limits for reading untrusted images.

Everything an image can make us do — allocate, decompress, iterate, spool to disk — is bounded by
one of these numbers. Defaults suit real images (a 10 GB layer of 500k files passes); a hostile one
fails fast with a message naming the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from portwarden.core.errors import ManifestError
from portwarden.core.model.base import ValueObject

if TYPE_CHECKING:
    from portwarden.core.image.sources import ResolvedImage

MiB = 1024 * 1024
GiB = 1024 * MiB


class SafetyLimits(ValueObject):
    max_manifest_bytes: int = Field(default=4 * MiB, gt=0)
    max_config_bytes: int = Field(default=8 * MiB, gt=0)
    max_layers: int = Field(default=256, gt=0)
    max_entries_per_layer: int = Field(default=1_000_000, gt=0)
    max_path_length: int = Field(default=4096, gt=0)
    max_link_target_length: int = Field(default=4096, gt=0)
    # Decompressed bytes of one layer, and the ratio to its compressed size (decompression bombs).
    max_layer_uncompressed_bytes: int = Field(default=32 * GiB, gt=0)
    max_compression_ratio: float = Field(default=200.0, gt=1)
    # The ratio only applies past this many decompressed bytes: tiny layers of zeros are legitimate.
    compression_ratio_grace_bytes: int = Field(default=64 * MiB, gt=0)
    # Content kept for analyzers: one file, and all captured files of one image together.
    max_captured_file_bytes: int = Field(default=256 * MiB, gt=0)
    max_captured_total_bytes: int = Field(default=2 * GiB, gt=0)
    max_warnings: int = Field(default=1000, gt=0)
    # Wall-clock bound for reading one image from a registry (manifests, config and every layer).
    # Each HTTP request has its own deadline in the registry client; this one stops an image whose
    # layers arrive too slowly to ever finish (a registry trickling bytes keeps every read alive).
    max_image_read_seconds: float = Field(default=3600.0, gt=0)


def check_layer_count(resolved: ResolvedImage, limits: SafetyLimits) -> None:
    """ManifestError for an image over ``max_layers``, or whose config lists another number of
    diff_ids than its manifest has layers (checked before any layer, or any cache entry, is used)."""
    layers = resolved.layers
    if len(layers) > limits.max_layers:
        raise ManifestError(f"image has {len(layers)} layers, more than max_layers={limits.max_layers}")
    diff_ids = resolved.config_document.rootfs.diff_ids
    if len(diff_ids) != len(layers):
        raise ManifestError(
            f"the manifest lists {len(layers)} layers but the image config lists {len(diff_ids)} diff_ids"
        )
