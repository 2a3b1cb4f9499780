"""Analyzers: plugins that read the image through a FileResolver and report what they find."""
