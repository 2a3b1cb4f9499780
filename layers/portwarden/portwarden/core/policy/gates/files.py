"""Gate ``files``: checks the files of the final image filesystem and the content-search hits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from pydantic import field_validator

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import compiled
from portwarden.core.policy.params import Bool, LowerEnum, NoParams, Regex, TriggerParams

# ---- content_regex_match ---------------------------------------------------------------------------------


class ContentRegexMatchParams(TriggerParams):
    regex_name: str | None = None


def content_regex_match(data: EvaluationInput, params: ContentRegexMatchParams) -> Iterator[TriggerFiring]:
    seen: set[tuple[str, str]] = set()
    for hit in data.analysis.content_matches:
        if params.regex_name is not None and hit.name != params.regex_name:
            continue
        key = (hit.path, hit.name)
        if key in seen:  # one firing per file and pattern, however many lines matched
            continue
        seen.add(key)
        yield TriggerFiring(
            message=f"File content analyzer found match for regex name {hit.name} in file {hit.path}"
        )


# ---- name_match ------------------------------------------------------------------------------------------


class NameMatchParams(TriggerParams):
    regex: Regex


def name_match(data: EvaluationInput, params: NameMatchParams) -> Iterator[TriggerFiring]:
    pattern = compiled(params.regex)
    for file in data.analysis.files:
        if pattern.match(file.path):
            yield TriggerFiring(
                message=(
                    "Application of regex matched file found in container: "
                    f"file={file.path} regexp={params.regex}"
                )
            )


# ---- attribute_match -------------------------------------------------------------------------------------


class ChecksumAlgorithm(StrEnum):
    SHA256 = "sha256"


class Equality(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"


_OCTAL = re.compile(r"^[0-7]{1,6}$")


class AttributeMatchParams(TriggerParams):
    filename: str
    checksum_algorithm: Annotated[ChecksumAlgorithm, LowerEnum] = ChecksumAlgorithm.SHA256
    checksum: str | None = None
    checksum_match: Annotated[Equality, LowerEnum] = Equality.EQUALS
    mode: str | None = None
    mode_op: Annotated[Equality, LowerEnum] = Equality.EQUALS
    skip_missing: Bool = True

    @field_validator("mode")
    @classmethod
    def _octal(cls, value: str | None) -> str | None:
        if value is not None and not _OCTAL.match(value.strip()):
            raise ValueError(f"expected an octal mode such as 00644, got {value!r}")
        return value.strip() if value is not None else None

    @field_validator("checksum")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        return value.strip().lower().removeprefix("sha256:") if value is not None else None


def attribute_match(data: EvaluationInput, params: AttributeMatchParams) -> Iterator[TriggerFiring]:
    file = next((f for f in data.analysis.files if f.path == params.filename), None)
    if file is None:
        if not params.skip_missing:
            yield TriggerFiring(message=f"Specified filename {params.filename} not found in container")
        return
    if params.checksum is None and params.mode is None:
        return
    checks: list[str] = []
    if params.checksum is not None:
        same = (file.sha256 or "").lower().removeprefix("sha256:") == params.checksum
        if same != (params.checksum_match is Equality.EQUALS):
            return
        checks.append(f"checksum {params.checksum_match.value} {params.checksum}")
    if params.mode is not None:
        same = int(file.mode, 8) & 0o7777 == int(params.mode, 8) & 0o7777
        if same != (params.mode_op is Equality.EQUALS):
            return
        checks.append(f"mode {params.mode_op.value} {params.mode}")
    yield TriggerFiring(message=f"File attributes of {params.filename} match the check: {', '.join(checks)}")


# ---- suid_or_guid_set ------------------------------------------------------------------------------------


def suid_or_guid_set(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    for file in data.analysis.files:
        if file.setuid or file.setgid:
            yield TriggerFiring(message=f"SUID or SGID found set on file {file.path}. Mode: {file.mode}")


GATE = Gate(
    name="files",
    version=1,
    description="Checks the files in the image: names, attributes, setuid/setgid bits, content matches.",
    triggers=(
        Trigger(
            "content_regex_match",
            "Fires per file the content search matched (optionally for one named pattern).",
            ContentRegexMatchParams,
            content_regex_match,
        ),
        Trigger("name_match", "Fires per file whose path matches the regex.", NameMatchParams, name_match),
        Trigger(
            "attribute_match",
            "Fires when a file's checksum and/or mode meet the check "
            "(or is missing and skip_missing is false).",
            AttributeMatchParams,
            attribute_match,
        ),
        Trigger(
            "suid_or_guid_set", "Fires per file with the setuid or setgid bit.", NoParams, suid_or_guid_set
        ),
    ),
)
