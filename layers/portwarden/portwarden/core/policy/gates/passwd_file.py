"""Gate ``passwd_file``: checks /etc/passwd, as retrieved by the analysis (``retrieve_files``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import AliasChoices, Field

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import (
    PASSWD_PATH,
    PasswdEntry,
    passwd_entries,
    retrieved_file,
    retrieved_text,
)
from portwarden.core.policy.params import CsvInts, CsvStrings, NoParams, TriggerParams


def _entries(data: EvaluationInput) -> list[PasswdEntry] | None:
    file = retrieved_file(data.analysis, PASSWD_PATH)
    return passwd_entries(retrieved_text(file)) if file is not None else None


def content_not_available(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    if retrieved_file(data.analysis, PASSWD_PATH) is None:
        yield TriggerFiring(message="No /etc/passwd file content was retrieved during analysis")


class UserNamesParams(TriggerParams):
    user_names: CsvStrings


class UserIdsParams(TriggerParams):
    user_ids: CsvInts


class GroupIdsParams(TriggerParams):
    group_ids: CsvInts


class ShellsParams(TriggerParams):
    # ``shellmatch`` is the parameter's older name; both are accepted.
    shells: CsvStrings = Field(validation_alias=AliasChoices("shells", "shellmatch"))


class FullEntryParams(TriggerParams):
    entry: str


def _fire_for(
    data: EvaluationInput, selected: Callable[[PasswdEntry], bool], describe: Callable[[PasswdEntry], str]
) -> Iterator[TriggerFiring]:
    for entry in _entries(data) or ():
        if selected(entry):
            yield TriggerFiring(message=describe(entry))


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def blacklist_usernames(data: EvaluationInput, params: UserNamesParams) -> Iterator[TriggerFiring]:
    names = set(params.user_names)
    yield from _fire_for(
        data,
        lambda e: e.username in names,
        lambda e: f"Blacklisted user '{e.username}' found in image's /etc/passwd",
    )


def blacklist_userids(data: EvaluationInput, params: UserIdsParams) -> Iterator[TriggerFiring]:
    ids = set(params.user_ids)
    yield from _fire_for(
        data,
        lambda e: _as_int(e.uid) in ids,
        lambda e: f"Blacklisted uid '{e.uid}' (user '{e.username}') found in image's /etc/passwd",
    )


def blacklist_groupids(data: EvaluationInput, params: GroupIdsParams) -> Iterator[TriggerFiring]:
    ids = set(params.group_ids)
    yield from _fire_for(
        data,
        lambda e: _as_int(e.gid) in ids,
        lambda e: f"Blacklisted gid '{e.gid}' (user '{e.username}') found in image's /etc/passwd",
    )


def blacklist_shells(data: EvaluationInput, params: ShellsParams) -> Iterator[TriggerFiring]:
    shells = set(params.shells)
    yield from _fire_for(
        data,
        lambda e: e.shell in shells,
        lambda e: f"Blacklisted shell '{e.shell}' (user '{e.username}') found in image's /etc/passwd",
    )


def blacklist_full_entry(data: EvaluationInput, params: FullEntryParams) -> Iterator[TriggerFiring]:
    wanted = params.entry.strip()
    yield from _fire_for(
        data,
        lambda e: e.line == wanted,
        lambda e: f"Blacklisted passwd entry '{e.line}' found in image's /etc/passwd",
    )


GATE = Gate(
    name="passwd_file",
    version=1,
    description="Checks the users, ids and shells of /etc/passwd (needs the file retrieved by the analysis).",
    triggers=(
        Trigger(
            "content_not_available",
            "Fires when /etc/passwd was not retrieved.",
            NoParams,
            content_not_available,
        ),
        Trigger("blacklist_usernames", "Fires per listed user name.", UserNamesParams, blacklist_usernames),
        Trigger("blacklist_userids", "Fires per entry with a listed uid.", UserIdsParams, blacklist_userids),
        Trigger(
            "blacklist_groupids", "Fires per entry with a listed gid.", GroupIdsParams, blacklist_groupids
        ),
        Trigger(
            "blacklist_shells", "Fires per entry with a listed login shell.", ShellsParams, blacklist_shells
        ),
        Trigger(
            "blacklist_full_entry", "Fires for an exact passwd line.", FullEntryParams, blacklist_full_entry
        ),
    ),
)
