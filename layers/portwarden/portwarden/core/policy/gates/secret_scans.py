"""Gate ``secret_scans``: checks the secret-search findings (paths and pattern names, never values)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import compiled
from portwarden.core.policy.params import LowerEnum, Regex, TriggerParams


class MatchType(StrEnum):
    FOUND = "found"
    NOTFOUND = "notfound"


class ContentRegexChecksParams(TriggerParams):
    content_regex_name: str | None = None
    filename_regex: Regex | None = None
    match_type: Annotated[MatchType, LowerEnum] = MatchType.FOUND


def content_regex_checks(data: EvaluationInput, params: ContentRegexChecksParams) -> Iterator[TriggerFiring]:
    path_pattern = compiled(params.filename_regex) if params.filename_regex else None
    hits: dict[tuple[str, str], None] = {}
    for finding in data.analysis.secrets:
        if params.content_regex_name is not None and finding.name != params.content_regex_name:
            continue
        if path_pattern is not None and not path_pattern.match(finding.path):
            continue
        hits[(finding.path, finding.name)] = None
    if params.match_type is MatchType.FOUND:
        for path, name in hits:
            yield TriggerFiring(
                message=(
                    "Secret content search analyzer found regexp match in container: "
                    f"file={path} regexp={name}"
                )
            )
    elif not hits:
        what = params.content_regex_name or "any secret pattern"
        where = f" in files matching {params.filename_regex}" if params.filename_regex else ""
        yield TriggerFiring(message=f"Secret content search analyzer found no match for {what}{where}")


GATE = Gate(
    name="secret_scans",
    version=1,
    description="Checks the secret search findings (file and pattern name).",
    triggers=(
        Trigger(
            "content_regex_checks",
            "Fires per file with a secret finding (match_type=found), or once when there is none (notfound).",
            ContentRegexChecksParams,
            content_regex_checks,
        ),
    ),
)
