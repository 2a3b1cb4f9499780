"""Policy evaluation, Anchore style: bundles, gates and triggers, mappings, allowlists, final action."""
