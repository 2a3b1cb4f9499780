"""Watch mode: subscription rules, the diffs that make notifications, Anchore's notification envelopes.

Pure functions and value objects; the services in ``core.services.watch`` and ``core.services.notify``
compose them with the stores and the delivery adapters.
"""
