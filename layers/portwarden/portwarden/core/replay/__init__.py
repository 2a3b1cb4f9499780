"""Answers made again from what earlier analyses kept, without the models.

An image whose layers were all read before, by analyses whose catalogers were kept
(``analyzers.memo``, ``phase``), can have its native document made from the layer fragments, the
kept catalogers' phase and its own manifest and config, with none of pydantic, the models or the
analyzers loaded: ``answer.replayed_document``. Every step is checked as the full analysis checks
it (digests, limits, the fragments' contents, every question of the kept phase asked again); any
step this path does not take exactly as the full one would (another document format, a platform,
a nested index, a value outside the strict subset the encoders here reproduce byte for byte, a
missing fragment, a phase not kept or answered differently) answers None, and the caller runs the
full analysis, which reports, stores and keeps what this path needs next time. Nothing here may
import pydantic (``tests/unit/replay``).
"""
