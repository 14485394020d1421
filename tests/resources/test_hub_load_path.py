"""The bulk load path keeps every value as it was: awkward text, JSON, numbers, booleans and timestamps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from assets.landing import sql_engine
from resources.hub import HubResource, TableSpec, postgres
from tests.conftest import postgres_hub

AWKWARD = TableSpec(
    "core.awkward_values",
    (("key", "text"), ("version", "bigint"), ("label", "text"), ("doc", "json"), ("ratio", "double"),
     ("flag", "bool"), ("seen_at", "timestamp")),
    ("key",),
    version_column="version",
)  # fmt: skip
LABELS = ["", None, 'say "hi"', "two\nlines", "\\N", "comma, semicolon;", "tab\there", "naïve ünïcode"]


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    return each_hub


@pytest.fixture
def pg_hub() -> Iterator[HubResource]:
    with postgres_hub() as hub:
        yield hub


def test_values_survive_the_stage_and_the_merge(hub: HubResource):
    rows = {
        "key": [f"k{i}" for i in range(len(LABELS))],
        "version": list(range(len(LABELS))),
        "label": LABELS,
        "doc": ['{"a": "b, \\"c\\""}', None, "[]", '{"n": 1.5}', '"text"', "{}", "null", '{"k": [1, 2]}'],
        "ratio": [0.1, None, -2.5, 1e300, 0.0, 3.0, None, 1 / 3],
        "flag": [True, False, None, True, False, None, True, False],
        "seen_at": [datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), None, *[datetime(2026, 2, 3, tzinfo=UTC)] * 6],
    }
    with hub.load("awkward") as load:
        load.stage(AWKWARD).append(AWKWARD.to_arrow(rows))
    stored = hub.read_frame("SELECT * FROM core.awkward_values ORDER BY version")
    assert [None if pd.isna(v) else v for v in stored["label"]] == LABELS  # "" stays "", None stays NULL
    assert [None if pd.isna(v) else bool(v) for v in stored["flag"]] == rows["flag"]
    assert stored["ratio"].iloc[7] == pytest.approx(1 / 3, rel=1e-15) and stored["ratio"].iloc[3] == 1e300
    assert stored["seen_at"].iloc[0].to_pydatetime() == datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert stored["doc"].isna().tolist()[1]


def test_a_stage_with_the_same_key_twice_keeps_the_newest_version(hub: HubResource):
    base = {"label": ["a", "b", "c"], "doc": [None] * 3, "ratio": [None] * 3, "flag": [None] * 3}
    with hub.load("twice") as load:
        stage = load.stage(AWKWARD)
        stage.append(AWKWARD.to_arrow({**base, "key": ["x", "x", "y"], "version": [1, 3, 1], "seen_at": [None] * 3}))
        stage.append(AWKWARD.to_arrow({**base, "key": ["x", "y", "z"], "version": [2, 1, 1], "seen_at": [None] * 3}))
    assert load.results[AWKWARD.name].rows_changed == 3
    stored = hub.read_frame("SELECT key, version, label FROM core.awkward_values ORDER BY key")
    assert stored.values.tolist() == [["x", 3, "b"], ["y", 1, "c"], ["z", 1, "c"]]


NOTES = TableSpec("core.notes", (("key", "text"), ("text", "text")), ("key",))  # unversioned: compared columns


def test_an_unversioned_key_staged_twice_keeps_the_first_row(hub: HubResource):
    with hub.load("notes") as load:
        stage = load.stage(NOTES)
        stage.append(NOTES.to_arrow({"key": ["a", "a", "b"], "text": ["first", "second", "b"]}))
        stage.append(NOTES.to_arrow({"key": ["a"], "text": ["third"]}))
    assert load.results[NOTES.name].rows_changed == 2
    assert hub.read_frame("SELECT key, text FROM core.notes ORDER BY key").values.tolist() == [
        ["a", "first"],
        ["b", "b"],
    ]


def test_updates_new_keys_and_duplicates_in_one_load_are_all_counted(hub: HubResource):
    def load_versions(keys: list[str], versions: list[int]) -> int:
        empty = [None] * len(keys)
        columns = {"key": keys, "version": versions, "label": [f"{k}{v}" for k, v in zip(keys, versions, strict=True)]}
        with hub.load("mixed") as load:
            load.stage(AWKWARD).append(AWKWARD.to_arrow({**columns, "doc": empty, "ratio": empty, "flag": empty,
                                                         "seen_at": empty}))  # fmt: skip
        return load.results[AWKWARD.name].rows_changed

    assert load_versions(["a", "b", "c"], [1, 1, 1]) == 3
    assert load_versions(["a", "a", "b"], [3, 2, 2]) == 2  # every staged key updated: nothing left to insert
    assert load_versions(["a", "c", "c", "d"], [3, 1, 2, 1]) == 2  # a unchanged, c updated, d new
    stored = hub.read_frame("SELECT key, version, label FROM core.awkward_values ORDER BY key")
    assert stored.values.tolist() == [["a", 3, "a3"], ["b", 2, "b2"], ["c", 2, "c2"], ["d", 1, "d1"]]


def test_extreme_values_survive_the_stage_and_the_merge(hub: HubResource):
    rows = {
        "key": ["lo", "zero", "hi"],
        "version": [-(2**63), 0, 2**63 - 1],
        "label": ["ü" * 5000, " ", "\u2603"],
        "doc": ['{"deep": [[[{"x": null}]]], "s": "\\u00e9"}', "0", '{"big": 12345678901234567890}'],
        "ratio": [float("-inf"), -0.0, float("inf")],
        "flag": [False, False, True],
        "seen_at": [datetime(1901, 12, 13, 20, 45, 52, 1, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 999999,
                    tzinfo=UTC), datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)],
    }  # fmt: skip
    with hub.load("extremes") as load:
        load.stage(AWKWARD).append(AWKWARD.to_arrow(rows))
    stored = hub.read_frame("SELECT * FROM core.awkward_values ORDER BY version")
    assert stored["version"].tolist() == rows["version"]
    assert stored["label"].tolist() == rows["label"]
    assert stored["ratio"].tolist() == rows["ratio"]
    assert [json.loads(d) for d in stored["doc"]] == [json.loads(d) for d in rows["doc"]]
    assert [t.to_pydatetime() for t in stored["seen_at"]] == rows["seen_at"]


def test_json_typed_by_duckdb_loads_as_it_is_and_untyped_text_must_be_json(hub: HubResource):
    typed = (
        sql_engine()
        .sql(
            """SELECT 'k' || i AS key, i AS version, NULL AS label, json_object('i', i, 's', 'é"') AS doc,
            NULL AS ratio, NULL AS flag, NULL AS seen_at FROM range(3) t(i)"""
        )
        .to_arrow_table()
    )
    assert isinstance(typed.schema.field("doc").type, pa.JsonType)  # what SqlFlatten and land_json_pages hand over
    assert isinstance(AWKWARD.conformed(typed).schema.field("doc").type, pa.JsonType)  # staged without a re-parse
    with hub.load("typed json") as load:
        load.stage(AWKWARD).append(typed)
    stored = hub.read_frame("SELECT doc FROM core.awkward_values ORDER BY version")
    assert [json.loads(d) for d in stored["doc"]] == [{"i": i, "s": 'é"'} for i in range(3)]

    untyped = AWKWARD.to_arrow({**{c: [None] for c in AWKWARD.column_names}, "key": ["bad"], "doc": ["{not json"]})
    assert AWKWARD.conformed(untyped).schema.field("doc").type == pa.string()  # parsed, so checked, on insert
    with pytest.raises((duckdb.Error, psycopg.Error)), hub.load("untyped json") as load:
        load.stage(AWKWARD).append(untyped)
    assert hub.scalar("SELECT count(*) FROM core.awkward_values WHERE key = 'bad'") == 0


def test_a_batch_bigger_than_one_copy_chunk_arrives_whole(pg_hub: HubResource, monkeypatch):
    monkeypatch.setattr(postgres, "COPY_CHUNK_BYTES", 1_000)  # a few rows per chunk
    keys = [f"k{i:04d}" for i in range(2_000)]
    with pg_hub.load("chunks") as load:
        load.stage(NOTES).append(NOTES.to_arrow({"key": keys, "text": [k * 3 for k in keys]}))
    assert load.results[NOTES.name].rows_changed == 2_000
    stored = pg_hub.read_frame("SELECT key, text FROM core.notes ORDER BY key")
    assert stored["key"].tolist() == keys and stored["text"].tolist() == [k * 3 for k in keys]


def test_upserted_postgres_tables_leave_room_for_updates_on_the_same_page(pg_hub: HubResource):
    events = TableSpec("core.events", (("event_id", "text"),), ("event_id",), merge="append")
    backend = pg_hub.backend
    backend.ensure_schemas()
    with backend.connect() as con:  # notes exists already, made before the setting
        con.execute("CREATE TABLE core.notes (key TEXT PRIMARY KEY, text TEXT, _batch_id INT8, _loaded_at TIMESTAMPTZ)")
    for spec in (NOTES, AWKWARD, events):
        pg_hub.ensure_table(spec)
    options = pg_hub.read_frame(
        "SELECT relname, coalesce(array_to_string(reloptions, ','), '') FROM pg_class WHERE relname IN (?, ?, ?)",
        ["notes", "awkward_values", "events"],
    )
    assert dict(options.values.tolist()) == {
        "notes": f"fillfactor={postgres.UPSERT_FILLFACTOR}",
        "awkward_values": f"fillfactor={postgres.UPSERT_FILLFACTOR}",
        "events": "",
    }
