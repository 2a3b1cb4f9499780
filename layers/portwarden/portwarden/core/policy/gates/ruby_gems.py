"""Gate ``ruby_gems``: checks the Ruby gems in the image.

Anchore's feed-comparison triggers need its optional ``packages`` feed (gem metadata from
rubygems.org). Portwarden has no such feed, so it behaves like an Anchore install where that feed was
never synced: ``feed_data_unavailable`` fires (for images that contain gems) and the three feed
comparisons find nothing to report.
"""

from __future__ import annotations

from collections.abc import Iterator

from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.params import NoParams, TriggerParams


def gems(data: EvaluationInput) -> list[Package]:
    return [p for p in data.analysis.packages if p.type is PackageType.GEM]


class BlacklistParams(TriggerParams):
    name: str
    version: str | None = None


def blacklist(data: EvaluationInput, params: BlacklistParams) -> Iterator[TriggerFiring]:
    for gem in gems(data):
        if gem.name == params.name and (params.version is None or gem.version == params.version):
            yield TriggerFiring(message=f"Gem is blacklisted: {gem.name}-{gem.version}")


def feed_data_unavailable(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    if gems(data):
        yield TriggerFiring(message="Gem packages feed data is not available for evaluation")


def without_feed(_data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    """Feed comparisons: with no packages feed there is nothing to compare against."""
    yield from ()


GATE = Gate(
    name="ruby_gems",
    version=1,
    description="Checks the Ruby gems in the image.",
    triggers=(
        Trigger(
            "blacklist", "Fires per installed gem with the name (and version).", BlacklistParams, blacklist
        ),
        Trigger(
            "feed_data_unavailable",
            "Fires when the image has gems and no gem feed data exists (always, in Portwarden).",
            NoParams,
            feed_data_unavailable,
        ),
        Trigger(
            "newer_version_found_in_feed", "Needs a gem feed; Portwarden has none.", NoParams, without_feed
        ),
        Trigger("not_found_in_feed", "Needs a gem feed; Portwarden has none.", NoParams, without_feed),
        Trigger(
            "version_not_found_in_feed", "Needs a gem feed; Portwarden has none.", NoParams, without_feed
        ),
    ),
)
