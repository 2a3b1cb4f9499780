"""``construct_complete`` builds what ``model_construct`` builds, for the models it is used on."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from pydantic import Field

from portwarden.core.image.fragment import LayerEntry
from portwarden.core.model.analysis import AnalyzedFile
from portwarden.core.model.base import ValueObject, construct_complete
from portwarden.core.model.files import FileRecord, FileType

RECORD_VALUES: dict[str, Any] = {
    "path": "/usr/bin/su",
    "type": FileType.FILE,
    "mode": 0o4755,
    "uid": 0,
    "gid": 0,
    "size": 71912,
    "sha256": "ab" * 32,
    "link_target": None,
    "layer_digest": "sha256:" + "cd" * 32,
}


def test_file_record_is_what_validation_and_model_construct_give() -> None:
    fast = construct_complete(FileRecord, dict(RECORD_VALUES), set(FileRecord.model_fields))
    validated = FileRecord(**RECORD_VALUES)
    constructed = FileRecord.model_construct(**RECORD_VALUES)
    for other in (validated, constructed):
        assert fast == other and other == fast
        assert hash(fast) == hash(other)
        assert fast.model_dump() == other.model_dump()
        assert fast.model_dump_json() == other.model_dump_json()
        assert fast.model_fields_set == other.model_fields_set
    assert pickle.loads(pickle.dumps(fast)) == validated  # noqa: S301 - our own bytes
    assert copy.deepcopy(fast) == validated
    changed = fast.model_copy(update={"size": 1})
    assert changed.size == 1 and fast.size == 71912
    with pytest.raises(Exception, match="frozen"):
        fast.size = 3  # type: ignore[misc]


def test_layer_entries_and_inventory_entries_match_validated_models() -> None:
    entry = LayerEntry(
        "/usr/bin/su",
        FileType.FILE,
        0o4755,
        0,
        0,
        71912,
        bytes.fromhex("ab" * 32),
        None,
        "sha256:" + "cd" * 32,
    )
    record = entry.to_record()
    assert record == FileRecord(**RECORD_VALUES)
    analyzed = AnalyzedFile.from_record(record)
    expected = AnalyzedFile(
        path="/usr/bin/su",
        type="file",
        mode="4755",
        uid=0,
        gid=0,
        size=71912,
        sha256="ab" * 32,
        link_target=None,
        layer_digest="sha256:" + "cd" * 32,
        setuid=True,
    )
    assert analyzed == expected and analyzed.model_dump_json() == expected.model_dump_json()
    assert AnalyzedFile.model_validate_json(analyzed.model_dump_json()) == analyzed


class _WithAlias(ValueObject):
    name: str = Field(alias="Name")


class _WithPostInit(ValueObject):
    name: str

    def model_post_init(self, context: Any, /) -> None:
        pass


@pytest.mark.parametrize("model", [_WithAlias, _WithPostInit])
def test_models_it_would_build_wrongly_are_refused(model: type[ValueObject]) -> None:
    with pytest.raises(TypeError):
        construct_complete(model, {"name": "x"}, {"name"})


def test_a_missing_field_is_refused() -> None:
    values = dict(RECORD_VALUES)
    del values["layer_digest"]
    with pytest.raises(ValueError, match="every field"):
        construct_complete(FileRecord, values, set(FileRecord.model_fields))
