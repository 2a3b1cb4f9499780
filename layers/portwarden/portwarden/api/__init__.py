"""The REST API: one Powertools resolver, served by the API Lambda and by ``portwarden serve``."""

API_VERSION = "1.0.0"
"""Version of the HTTP contract (routes, bodies, status codes); bumped independently of the package."""
