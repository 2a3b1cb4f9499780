"""Route groups, one Powertools ``Router`` per resource family, included by ``portwarden.api.app``."""
