"""Immutable pydantic value objects shared by the core, the adapters and the API."""
