"""``construct_complete`` builds what ``model_construct`` builds, for the models it is used on; file
records (named tuples) made every way the reader makes them are the same records."""

from __future__ import annotations

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import Field

from portwarden.core.image.fragment import LayerEntry, LayerRecord, as_records
from portwarden.core.model.analysis import AnalyzedFile
from portwarden.core.model.base import ValueObject, construct_all, construct_complete
from portwarden.core.model.files import FileRecord, FileType, make_record

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


ENTRY_VALUES: dict[str, Any] = {
    **{name: RECORD_VALUES[name] for name in FileRecord._fields},
    "type": "file",
    "mode": "4755",
    "setuid": True,
    "setgid": False,
    "world_writable": False,
}


def test_an_inventory_entry_is_what_validation_and_model_construct_give() -> None:
    fast = construct_complete(AnalyzedFile, dict(ENTRY_VALUES), set(AnalyzedFile.model_fields))
    validated = AnalyzedFile(**ENTRY_VALUES)
    constructed = AnalyzedFile.model_construct(**ENTRY_VALUES)
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


def test_a_file_record_made_at_c_speed_is_the_record_its_constructor_makes() -> None:
    made = make_record(tuple(RECORD_VALUES.values()))
    built = FileRecord(**RECORD_VALUES)
    assert made == built and type(made) is FileRecord and hash(made) == hash(built)
    assert made._asdict() == RECORD_VALUES and tuple(RECORD_VALUES) == FileRecord._fields
    assert (made.mode_octal, made.is_setuid, made.is_setgid, made.is_world_writable) == (
        "4755",
        True,
        False,
        False,
    )
    assert pickle.loads(pickle.dumps(made)) == built  # noqa: S301 - our own bytes
    changed = made._replace(size=1)
    assert changed.size == 1 and made.size == 71912
    with pytest.raises(AttributeError):
        made.size = 3  # type: ignore[misc]


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
    values = dict(ENTRY_VALUES)
    del values["layer_digest"]
    with pytest.raises(ValueError, match="every field"):
        construct_complete(AnalyzedFile, values, set(AnalyzedFile.model_fields))


def _expected_inventory_entry(record: FileRecord) -> AnalyzedFile:
    """What the inventory shows for ``record``, worked out from the record alone and validated."""
    special = record.type != FileType.DIRECTORY
    return AnalyzedFile(
        path=record.path,
        type=record.type.value,
        mode=format(record.mode, "04o"),
        uid=record.uid,
        gid=record.gid,
        size=record.size,
        sha256=record.sha256,
        link_target=record.link_target,
        layer_digest=record.layer_digest,
        setuid=special and bool(record.mode & 0o4000),
        setgid=special and bool(record.mode & 0o2000),
        world_writable=record.type in (FileType.FILE, FileType.DIRECTORY) and bool(record.mode & 0o002),
    )


def test_inventory_entries_of_every_type_and_mode_from_many_threads() -> None:
    """``from_record`` and ``from_records`` work out each (type, mode) pair once and share it: every
    pair, asked for by eight threads at once in different orders, gives what validation gives, for
    each record's own path, owner, size and digest."""
    records = [
        FileRecord(
            path=f"/f/{kind.value}/{mode:o}",
            type=kind,
            mode=mode,
            uid=mode % 7,
            gid=mode % 5,
            size=mode,
            sha256=f"{mode:064x}" if kind == FileType.FILE else None,
            link_target="/t" if kind in (FileType.SYMLINK, FileType.HARDLINK) else None,
            layer_digest=f"sha256:{mode:064x}",
        )
        for kind in FileType
        for mode in range(0, 0o10000, 7)
    ]
    expected = [_expected_inventory_entry(record) for record in records]

    def build(offset: int) -> list[tuple[int, AnalyzedFile]]:
        order = list(range(offset, len(records))) + list(range(offset))
        return [(i, AnalyzedFile.from_record(records[i])) for i in order]

    def build_together(offset: int) -> list[tuple[int, AnalyzedFile]]:
        order = list(range(offset, len(records))) + list(range(offset))
        return list(zip(order, AnalyzedFile.from_records(records[i] for i in order), strict=True))

    with ThreadPoolExecutor(max_workers=8) as pool:
        offsets = range(0, len(records), len(records) // 8 + 1)
        results = list(pool.map(build, offsets)) + list(pool.map(build_together, offsets))
    for built in results:
        assert len(built) == len(records)
        for i, entry in built:
            assert entry == expected[i], records[i]
            assert entry.model_dump_json() == expected[i].model_dump_json()


def test_inventory_in_one_pass_is_each_record_s_entry_byte_for_byte() -> None:
    """``from_records`` gives what ``from_record`` gives, the same JSON (field order included), for
    records made every way the squash makes them: by their constructor, from their values in order,
    by ``_replace``, converted from layer entries."""
    records: list[FileRecord] = []
    for kind in FileType:
        for mode in (0, 0o644, 0o755, 0o777, 0o4755, 0o2755, 0o1777, 0o6777):
            values = {**RECORD_VALUES, "path": f"/v/{kind.value}/{mode:o}", "type": kind, "mode": mode}
            records.append(FileRecord(**values))
            records.append(make_record(tuple({**values, "path": values["path"] + "c"}.values())))
            records.append(FileRecord(**values)._replace(size=7, sha256=None))
            digest = bytes.fromhex("ef" * 32) if kind == FileType.FILE else None
            entry = LayerEntry(values["path"] + "e", kind, mode, 1, 2, 3, digest, "/t", "sha256:" + "01" * 32)
            records.append(entry.to_record())
    together = AnalyzedFile.from_records(iter(records))
    assert len(together) == len(records)
    for record, entry in zip(records, together, strict=True):
        alone = AnalyzedFile.from_record(record)
        assert entry == alone == _expected_inventory_entry(record)
        assert entry.model_dump_json() == alone.model_dump_json()
        assert list(entry.__dict__) == list(AnalyzedFile.model_fields)
        assert entry.model_fields_set == alone.model_fields_set


def test_squash_conversion_in_one_pass_matches_each_entry_s() -> None:
    entries = {
        f"/p{i}": LayerEntry(
            f"/p{i}",
            kind,
            0o640 + i % 8,
            i,
            i + 1,
            i * 10,
            None if i % 3 else bytes([i % 256]) * 32,
            None if kind != FileType.SYMLINK else "../x",
            "sha256:" + "ab" * 32,
        )
        for i, kind in enumerate(list(FileType) * 40)
    }
    converted = as_records(entries)
    assert list(converted) == list(entries)
    for path, record in converted.items():
        expected = entries[path].to_record()
        assert record == expected and type(record) is FileRecord
        assert record._asdict() == expected._asdict()
    # Records given as FileRecords (layers built by hand) pass through as they are.
    mixed: dict[str, LayerRecord] = {**entries, "/r": FileRecord(path="/r", type=FileType.FILE, mode=0o600)}
    converted_mixed = as_records(mixed)
    assert converted_mixed["/r"] is mixed["/r"]
    assert converted_mixed["/p5"] == entries["/p5"].to_record()


def test_construct_all_refuses_a_row_without_every_field() -> None:
    rows = [dict(ENTRY_VALUES), {k: v for k, v in ENTRY_VALUES.items() if k != "size"}]
    with pytest.raises(ValueError, match="every field"):
        construct_all(AnalyzedFile, iter(rows), set(AnalyzedFile.model_fields))
