"""Gate ``npms``: checks the npm packages in the image.

As with ``ruby_gems``, the feed-comparison triggers need Anchore's optional ``packages`` feed, which
Portwarden does not have: ``feed_data_unavailable`` fires for images that contain npm packages and the
three feed comparisons find nothing to report.
"""

from __future__ import annotations

from collections.abc import Iterator

from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.params import NoParams, TriggerParams


def npm_packages(data: EvaluationInput) -> list[Package]:
    return [p for p in data.analysis.packages if p.type is PackageType.NPM]


class BlacklistedNameVersionParams(TriggerParams):
    name: str
    version: str | None = None


def blacklisted_name_version(
    data: EvaluationInput, params: BlacklistedNameVersionParams
) -> Iterator[TriggerFiring]:
    for package in npm_packages(data):
        if package.name == params.name and (params.version is None or package.version == params.version):
            yield TriggerFiring(message=f"NPM Package is blacklisted: {package.name}-{package.version}")


def feed_data_unavailable(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    if npm_packages(data):
        yield TriggerFiring(message="NPM packages feed data is not available for evaluation")


def without_feed(_data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    """Feed comparisons: with no packages feed there is nothing to compare against."""
    yield from ()


GATE = Gate(
    name="npms",
    version=1,
    description="Checks the npm packages in the image.",
    triggers=(
        Trigger(
            "blacklisted_name_version",
            "Fires per installed npm package with the name (and version).",
            BlacklistedNameVersionParams,
            blacklisted_name_version,
        ),
        Trigger(
            "feed_data_unavailable",
            "Fires when the image has npm packages and no npm feed data exists (always, in Portwarden).",
            NoParams,
            feed_data_unavailable,
        ),
        Trigger("newer_version_in_feed", "Needs an npm feed; Portwarden has none.", NoParams, without_feed),
        Trigger("unknown_in_feeds", "Needs an npm feed; Portwarden has none.", NoParams, without_feed),
        Trigger("version_not_in_feeds", "Needs an npm feed; Portwarden has none.", NoParams, without_feed),
    ),
)
