"""Gate ``dockerfile``: checks the Dockerfile the user supplied, or the one reconstructed from the
image history when none was ("Guessed" mode, as Anchore calls it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from pydantic import model_validator

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import compiled
from portwarden.core.policy.params import (
    Bool,
    CsvInts,
    CsvStrings,
    ListType,
    ListTypeParam,
    LowerEnum,
    NoParams,
    TriggerParams,
    UpperEnum,
)


class DockerfileMode(StrEnum):
    ACTUAL = "Actual"
    GUESSED = "Guessed"


class Instruction(StrEnum):
    ADD = "ADD"
    ARG = "ARG"
    COPY = "COPY"
    CMD = "CMD"
    ENTRYPOINT = "ENTRYPOINT"
    ENV = "ENV"
    EXPOSE = "EXPOSE"
    FROM = "FROM"
    HEALTHCHECK = "HEALTHCHECK"
    LABEL = "LABEL"
    MAINTAINER = "MAINTAINER"
    ONBUILD = "ONBUILD"
    USER = "USER"
    RUN = "RUN"
    SHELL = "SHELL"
    STOPSIGNAL = "STOPSIGNAL"
    VOLUME = "VOLUME"
    WORKDIR = "WORKDIR"


def dockerfile_mode(data: EvaluationInput) -> DockerfileMode:
    return DockerfileMode.ACTUAL if data.dockerfile is not None else DockerfileMode.GUESSED


def dockerfile_text(data: EvaluationInput) -> str:
    return data.dockerfile if data.dockerfile is not None else data.analysis.image.dockerfile


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs in order; continuation lines are joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    if pending.strip():
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _applies(data: EvaluationInput, actual_only: bool) -> bool:
    return not actual_only or dockerfile_mode(data) is DockerfileMode.ACTUAL


# ---- instruction -----------------------------------------------------------------------------------------


class InstructionCheck(StrEnum):
    EQ = "="
    NE = "!="
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    LIKE = "like"
    NOT_LIKE = "not_like"
    IN = "in"
    NOT_IN = "not_in"


class InstructionParams(TriggerParams):
    instruction: Annotated[Instruction, UpperEnum]
    check: Annotated[InstructionCheck, LowerEnum]
    value: str | None = None
    actual_dockerfile_only: Bool = False

    @model_validator(mode="after")
    def _value_required(self) -> InstructionParams:
        if self.check not in (InstructionCheck.EXISTS, InstructionCheck.NOT_EXISTS):
            if self.value is None:
                raise ValueError(f"parameter 'value' is required when check is {self.check.value!r}")
            if self.check in (InstructionCheck.LIKE, InstructionCheck.NOT_LIKE):
                try:
                    re.compile(self.value)
                except re.error as exc:
                    raise ValueError(f"parameter 'value' is not a valid regular expression: {exc}") from exc
        return self


def _line_matches(check: InstructionCheck, actual: str, value: str) -> bool:
    if check is InstructionCheck.EQ:
        return actual == value
    if check is InstructionCheck.NE:
        return actual != value
    if check is InstructionCheck.LIKE:
        return compiled(value).match(actual) is not None
    if check is InstructionCheck.NOT_LIKE:
        return compiled(value).match(actual) is None
    listed = [v.strip() for v in value.split(",")]
    if check is InstructionCheck.IN:
        return actual in listed
    return actual not in listed


def instruction(data: EvaluationInput, params: InstructionParams) -> Iterator[TriggerFiring]:
    if not _applies(data, params.actual_dockerfile_only):
        return
    name = params.instruction.value
    lines = [(keyword, args) for keyword, args in parse_dockerfile(dockerfile_text(data)) if keyword == name]
    if params.check is InstructionCheck.EXISTS:
        if lines:
            yield TriggerFiring(message=f"Dockerfile directive '{name}' check 'exists' matched")
        return
    if params.check is InstructionCheck.NOT_EXISTS:
        if not lines:
            yield TriggerFiring(
                message=f"Dockerfile directive '{name}' not found, matching condition 'not_exists' check"
            )
        return
    value = params.value or ""
    for _, args in lines:
        if _line_matches(params.check, args, value):
            yield TriggerFiring(
                message=(
                    f"Dockerfile directive '{name}' check '{params.check.value}' matched against '{value}' "
                    f"for line '{args}'"
                )
            )


# ---- effective_user --------------------------------------------------------------------------------------


class EffectiveUserParams(TriggerParams):
    users: CsvStrings
    type: ListTypeParam


def effective_user_of(data: EvaluationInput) -> str:
    """The last USER instruction wins; an image that never sets one runs as root."""
    users = [args for keyword, args in parse_dockerfile(dockerfile_text(data)) if keyword == "USER"]
    if users:
        return users[-1].split()[0].split(":")[0] if users[-1] else "root"
    configured = data.analysis.image.config.get("user") if data.dockerfile is None else None
    if isinstance(configured, str) and configured.strip():
        return configured.strip().split(":")[0]
    return "root"


def effective_user(data: EvaluationInput, params: EffectiveUserParams) -> Iterator[TriggerFiring]:
    user = effective_user_of(data)
    listed = user in params.users
    if params.type is ListType.WHITELIST and not listed:
        yield TriggerFiring(message=f"User {user} found as effective user, which is not on the allowed list")
    elif params.type is ListType.BLACKLIST and listed:
        yield TriggerFiring(message=f"User {user} found as effective user, which is on the denied list")


# ---- exposed_ports ---------------------------------------------------------------------------------------


class ExposedPortsParams(TriggerParams):
    ports: CsvInts
    type: ListTypeParam
    actual_dockerfile_only: Bool = False


_PORT = re.compile(r"(?<![\w.])(\d{1,5})(?:/(?:tcp|udp|sctp))?")


def exposed_ports_of(data: EvaluationInput) -> list[int]:
    ports: list[int] = []
    for keyword, args in parse_dockerfile(dockerfile_text(data)):
        if keyword == "EXPOSE":
            ports.extend(int(p) for p in _PORT.findall(args))
    if data.dockerfile is None:
        # The image config is what the reconstructed Dockerfile was built from; it may list more.
        for spec in data.analysis.image.config.get("exposed_ports") or ():
            ports.extend(int(p) for p in _PORT.findall(str(spec)))
    return list(dict.fromkeys(ports))


def exposed_ports(data: EvaluationInput, params: ExposedPortsParams) -> Iterator[TriggerFiring]:
    if not _applies(data, params.actual_dockerfile_only):
        return
    for port in exposed_ports_of(data):
        listed = port in params.ports
        if params.type is ListType.WHITELIST and not listed:
            yield TriggerFiring(
                message=f"Dockerfile exposes port ({port}) which is not in the policy's allowed list"
            )
        elif params.type is ListType.BLACKLIST and listed:
            yield TriggerFiring(
                message=f"Dockerfile exposes port ({port}) which is in the policy's denied list"
            )


# ---- no_dockerfile_provided ------------------------------------------------------------------------------


def no_dockerfile_provided(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    if dockerfile_mode(data) is not DockerfileMode.ACTUAL:
        yield TriggerFiring(message="Image was not analyzed with an actual Dockerfile")


GATE = Gate(
    name="dockerfile",
    version=1,
    description="Checks the Dockerfile (supplied, or reconstructed from the image history).",
    triggers=(
        Trigger(
            "instruction",
            "Checks a Dockerfile instruction's presence or arguments.",
            InstructionParams,
            instruction,
        ),
        Trigger(
            "effective_user",
            "Checks the user the image runs as (last USER instruction; root when none).",
            EffectiveUserParams,
            effective_user,
        ),
        Trigger("exposed_ports", "Checks the ports the image exposes.", ExposedPortsParams, exposed_ports),
        Trigger(
            "no_dockerfile_provided",
            "Fires when the image was analyzed without an actual Dockerfile.",
            NoParams,
            no_dockerfile_provided,
        ),
    ),
)
