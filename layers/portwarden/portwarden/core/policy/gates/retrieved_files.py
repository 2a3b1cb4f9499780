"""Gate ``retrieved_files``: checks files whose content the analysis kept (``retrieve_files``).

``content_regex`` firings have the trigger id ``<rule id>+file://<path>``, as in Anchore.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import retrieved_file, retrieved_text
from portwarden.core.policy.params import LowerEnum, Regex, TriggerParams


class PathParams(TriggerParams):
    path: str


def content_not_available(data: EvaluationInput, params: PathParams) -> Iterator[TriggerFiring]:
    if retrieved_file(data.analysis, params.path) is None:
        yield TriggerFiring(message=f"No content retrieved for file {params.path}")


class RegexCheck(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"


class ContentRegexParams(TriggerParams):
    path: str
    regex: Regex
    check: Annotated[RegexCheck, LowerEnum]


def content_regex(data: EvaluationInput, params: ContentRegexParams) -> Iterator[TriggerFiring]:
    file = retrieved_file(data.analysis, params.path)
    if file is None:  # content_not_available reports the absence
        return
    found = re.search(params.regex, retrieved_text(file), re.MULTILINE) is not None
    if found and params.check is RegexCheck.MATCH:
        yield TriggerFiring(
            message=f"Content regex '{params.regex}' check 'match' found in retrieved file '{params.path}'",
            trigger_id=f"file://{params.path}",
            scoped_to_rule=True,
        )
    elif not found and params.check is RegexCheck.NO_MATCH:
        yield TriggerFiring(
            message=f"Content regex '{params.regex}' check 'no_match' holds for file '{params.path}'",
            trigger_id=f"file://{params.path}",
            scoped_to_rule=True,
        )


GATE = Gate(
    name="retrieved_files",
    version=1,
    description="Checks the content of files the analysis retrieved.",
    triggers=(
        Trigger(
            "content_not_available",
            "Fires when the file's content was not retrieved.",
            PathParams,
            content_not_available,
        ),
        Trigger(
            "content_regex",
            "Fires when the retrieved file's content matches (or does not match) the regex.",
            ContentRegexParams,
            content_regex,
        ),
    ),
)
