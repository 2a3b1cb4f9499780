"""Fixtures for integration tests (local services on 127.0.0.1 only)."""

from tests.support.registry import anonymous_registry, basic_auth_registry, token_registry

__all__ = ["anonymous_registry", "basic_auth_registry", "token_registry"]
