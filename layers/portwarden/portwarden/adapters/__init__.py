"""Concrete implementations of the core's ports: HTTP (registries, feeds), local (SQLite, files), AWS."""
