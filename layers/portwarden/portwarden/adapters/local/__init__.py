"""Local adapters: SQLite stores and filesystem blobs under PORTWARDEN_HOME."""
