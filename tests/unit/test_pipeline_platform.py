"""The pipeline's platform: the request default means "no platform in particular", others are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.errors import PlatformNotFoundError
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import AnalysisRequest, resolve_phase
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, write_oci_layout


def test_a_single_platform_arm64_image_is_analyzed_by_default_and_refused_for_another_platform(
    tmp_path: Path,
) -> None:
    image = build_image(
        [build_layer([file("arch", "arm64")])], ConfigSpec(architecture="arm64", variant="v8")
    )
    layout = write_oci_layout(tmp_path / "layout", image)
    store = LocalStore(tmp_path / "home")
    pointer = resolve_phase(
        AnalysisRequest(source=f"oci-dir:{layout}"), ImageAccess(), blobs=store.blobs, catalog=store.catalog
    )
    assert pointer.platform == "linux/arm64/v8"
    with pytest.raises(PlatformNotFoundError, match="the image is linux/arm64/v8 only"):
        resolve_phase(
            AnalysisRequest(source=f"oci-dir:{layout}", platform="linux/s390x", force=True),
            ImageAccess(),
            blobs=store.blobs,
            catalog=store.catalog,
        )
