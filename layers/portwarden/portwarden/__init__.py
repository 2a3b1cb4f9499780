"""Portwarden: container image inspection — SBOMs, vulnerabilities and Anchore-compatible policy."""

from portwarden.startup import skip_plugin_loader

__version__ = "0.1.0"

# First, before anything builds a model: with plugin discovery off (every Lambda function of the
# template), pydantic's loader would import importlib.metadata for nothing (``portwarden.startup``).
skip_plugin_loader()
