"""requests-based adapters: the registry client, its authentication, and registry credentials."""
