"""The ``portwarden`` command (typer + rich)."""
