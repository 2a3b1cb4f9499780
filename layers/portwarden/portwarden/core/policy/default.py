"""The bundle Portwarden ships and installs when no other is active (package data)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from portwarden.core.model.policy import PolicyBundle
from portwarden.core.policy.bundle import CompiledBundle, load_bundle

DEFAULT_BUNDLE_RESOURCE = "default_bundle.json"


@cache
def default_compiled_bundle() -> CompiledBundle:
    data = files("portwarden.core.policy").joinpath(DEFAULT_BUNDLE_RESOURCE).read_bytes()
    return load_bundle(data)


def default_bundle() -> PolicyBundle:
    return default_compiled_bundle().bundle
