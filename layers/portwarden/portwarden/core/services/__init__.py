"""Use cases composed from ports: what the CLI, the API and the Lambda handlers call."""
