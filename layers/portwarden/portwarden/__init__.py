"""Portwarden: container image inspection — SBOMs, vulnerabilities and Anchore-compatible policy."""

__version__ = "0.1.0"
