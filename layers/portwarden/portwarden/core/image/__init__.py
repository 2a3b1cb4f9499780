"""Image acquisition: references, sources, manifests, streaming layers, squash and the FileResolver."""
