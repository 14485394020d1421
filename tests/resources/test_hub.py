"""The hub on each backend: atomic, idempotent, bulk loads with sync state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy.engine

from resources.hub import HubError, HubResource, TableSpec
from tests.conftest import POSTGRES_URL, free_port

THINGS = TableSpec(
    "core.things",
    (("thing_id", "text"), ("version", "bigint"), ("doc", "json"), ("seen_at", "timestamp")),
    ("thing_id",),
    version_column="version",
)
PARTS = TableSpec(
    "core.parts",
    (("thing_id", "text"), ("part_no", "int"), ("label", "text")),
    ("thing_id", "part_no"),
    merge="replace_children",
    parent_key="thing_id",
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every test here runs on DuckDB and on Postgres."""
    return each_hub


def things(*rows: tuple[str, int]) -> pa.Table:
    return THINGS.to_arrow(
        {
            "thing_id": [r[0] for r in rows],
            "version": [r[1] for r in rows],
            "doc": [f'{{"v": {r[1]}}}' for r in rows],
            "seen_at": ["2026-01-01T00:00:00.001Z"] * len(rows),
        }
    )


def parts(*rows: tuple[str, int, str]) -> pa.Table:
    columns = ("thing_id", "part_no", "label")
    return PARTS.to_arrow({name: [r[i] for r in rows] for i, name in enumerate(columns)})


def snapshot(hub: HubResource) -> list:
    return [
        hub.read_frame(f"SELECT * FROM {t} ORDER BY 1, 2").to_dict("records")
        for t in ("core.things", "core.parts", "ops.sync_state")
    ]


def test_schemas_are_created(hub: HubResource):
    hub.sync_state("anything")
    schemas = set(hub.read_frame("SELECT schema_name FROM information_schema.schemata")["schema_name"])
    assert {"raw", "core", "serving", "quality", "ops"} <= schemas


def test_a_load_merges_keeps_the_newest_version_and_commits_its_sync_state(hub: HubResource):
    with hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 1), ("b", 1), ("a", 2)))
        load.advance(watermark=T0, cursor="page-9")
    assert load.results["core.things"].rows_changed == 2
    rows = hub.read_frame("SELECT thing_id, version, _batch_id FROM core.things ORDER BY thing_id")
    assert rows.values.tolist() == [["a", 2, load.batch_id], ["b", 1, load.batch_id]]
    state = hub.sync_state("things")
    assert (state.watermark, state.cursor, state.batch_id) == (T0, "page-9", load.batch_id)


def test_the_same_batch_twice_changes_nothing(hub: HubResource):
    for _ in range(2):
        with hub.load("things") as load:
            load.stage(THINGS).append(things(("a", 1), ("b", 3)))
            load.stage(PARTS).append(parts(("a", 1, "x")))
    first = hub.read_frame("SELECT * FROM core.things ORDER BY 1, 2")
    assert load.results["core.things"].rows_changed == 0
    with hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 1), ("b", 3)))
    assert hub.read_frame("SELECT * FROM core.things ORDER BY 1, 2").equals(first)


def test_an_older_version_never_overwrites_a_newer_one(hub: HubResource):
    with hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 5)))
    with hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 4)))
    assert hub.scalar("SELECT version FROM core.things") == 5


def test_children_of_a_parent_are_replaced_whole(hub: HubResource):
    with hub.load("things") as load:
        load.stage(PARTS).append(parts(("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z")))
    with hub.load("things") as load:
        stage = load.stage(PARTS)
        stage.append(parts(("a", 1, "x2")))
        stage.replace_parents(pa.array(["a", "c"]))
    rows = hub.read_frame("SELECT thing_id, part_no, label FROM core.parts ORDER BY 1, 2").values.tolist()
    assert rows == [["a", 1, "x2"], ["b", 1, "z"]]


def test_a_failed_load_leaves_data_and_sync_state_as_they_were(hub: HubResource):
    with hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 1)))
        load.stage(PARTS).append(parts(("a", 1, "w")))
        load.advance(watermark=T0, cursor="1")
    before = snapshot(hub)
    with pytest.raises(RuntimeError, match="source went away"), hub.load("things") as load:
        load.stage(THINGS).append(things(("a", 2), ("b", 1)))
        load.stage(PARTS).append(parts(("a", 1, "x")))
        load.advance(watermark=datetime(2026, 6, 1, tzinfo=UTC), cursor="2")
        raise RuntimeError("source went away")
    assert snapshot(hub) == before


def test_a_batch_with_the_wrong_columns_is_refused_by_name(hub: HubResource):
    with pytest.raises(KeyError, match="version"), hub.load("things") as load:
        load.stage(THINGS).append(pa.table({"thing_id": ["a"]}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (lambda: TableSpec("nowhere.t", (("a", "text"),), ("a",)), "schema must be one of"),
        (lambda: TableSpec("core.t; drop table x", (("a", "text"),), ("a",)), "invalid table name"),
        (lambda: TableSpec("core.t", (('a"b', "text"),), ("a",)), "invalid column name"),
        (lambda: TableSpec("core.t", (("a", "money"),), ("a",)), "unknown type 'money'"),
        (lambda: TableSpec("core.t", (("a", "text"),), ("b",)), "not among its columns"),
    ],
)
def test_table_declarations_are_checked(spec, message):
    with pytest.raises(ValueError, match=message):
        spec()


def test_an_unwritable_hub_path_names_the_setting(tmp_path: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(HubError, match=r"cannot open the DuckDB hub at .*not-a-directory/hub.duckdb \(HUB_URL\)"):
        HubResource(url=f"duckdb:///{blocker}/hub.duckdb").sync_state("x")


@pytest.mark.parametrize("url", ["not a url", "mysql://u:hunter2@db/hub", "duckdb://"])
def test_a_bad_hub_url_shows_the_accepted_forms_and_no_password(url: str):
    with pytest.raises(HubError, match="accepted forms: duckdb:///") as failure:
        HubResource(url=url).sync_state("x")
    assert "hunter2" not in str(failure.value)


def test_an_unversioned_row_changes_only_when_its_compared_columns_do(hub: HubResource):
    notes = TableSpec(
        "raw.notes", (("note_id", "text"), ("body", "json"), ("seen_at", "timestamp")), ("note_id",),
        change_columns=("body",),
    )  # fmt: skip

    def load(body: str, seen_at: str) -> int:
        with hub.load("notes") as batch:
            batch.stage(notes).append(notes.to_arrow({"note_id": ["n"], "body": [body], "seen_at": [seen_at]}))
        return batch.results["raw.notes"].rows_changed

    assert load('{"a": 1}', "2026-01-01T00:00:00Z") == 1
    assert load('{"a": 1}', "2026-01-02T00:00:00Z") == 0
    assert load('{"a": 2}', "2026-01-03T00:00:00Z") == 1
    assert hub.read_frame("SELECT body, seen_at FROM raw.notes").iloc[0]["body"] == '{"a": 2}'


def test_an_unreachable_postgres_hub_names_the_setting_and_masks_the_password():
    url = f"postgresql://hub:s3cret-pw@127.0.0.1:{free_port()}/hub"
    with pytest.raises(
        HubError, match=r"cannot connect to the Postgres hub at postgresql://hub:\*\*\*@127.0.0.1"
    ) as failure:
        HubResource(url=url).sync_state("x")
    assert "(HUB_URL)" in str(failure.value) and "s3cret-pw" not in str(failure.value)


@pytest.mark.skipif(not POSTGRES_URL, reason="HUB_TEST_POSTGRES_URL is not set")
def test_an_unknown_postgres_role_fails_without_echoing_the_password():
    server = sqlalchemy.engine.make_url(POSTGRES_URL)
    url = server.set(username="no_such_role", password="s3cret-pw").render_as_string(hide_password=False)
    with pytest.raises(HubError, match='role "no_such_role" does not exist') as failure:
        HubResource(url=url).sync_state("x")
    assert "s3cret-pw" not in str(failure.value)


def test_a_replace_table_is_swapped_whole(hub: HubResource):
    board = TableSpec("serving.v1_board", (("item", "text"), ("rank", "int")), ("item",), merge="replace")

    def publish(*rows: tuple[str, int]) -> None:
        with hub.load("board") as load:
            load.stage(board).append(board.to_arrow({"item": [r[0] for r in rows], "rank": [r[1] for r in rows]}))

    publish(("a", 1), ("b", 2))
    publish(("c", 1))
    assert hub.read_frame("SELECT item, rank FROM serving.v1_board").values.tolist() == [["c", 1]]


def test_change_events_append_once_per_event_id_and_never_rewrite(hub: HubResource):
    from pipelines.change_events import CHANGE_EVENTS, ChangeEvent, append_change_events, new_event_count

    def event(event_id: str, quantity: int) -> ChangeEvent:
        return ChangeEvent(event_id, "InventoryEntryQuantitySet", "inventory-entry", "inv-1", T0, {"qty": quantity})

    first = append_change_events(hub, "commerce", [event("m1", 5), event("m2", 6), event("m1", 5)], "poll", cursor="c1")
    again = append_change_events(hub, "commerce", [event("m2", 99), event("m3", 7)], "amqp")

    assert (new_event_count(first), new_event_count(again)) == (2, 1)
    stored = hub.read_frame(f"SELECT event_id, payload, transport, _batch_id FROM {CHANGE_EVENTS.name} ORDER BY 1")
    assert stored["event_id"].tolist() == ["m1", "m2", "m3"]
    assert '"qty":6' in stored["payload"][1].replace(" ", "") and stored["transport"][1] == "poll"
    assert stored["_batch_id"].tolist() == [first.batch_id, first.batch_id, again.batch_id]
    assert hub.sync_state("events:commerce").cursor == "c1"
