"""The bulk load path keeps every value as it was: awkward text, JSON, numbers, booleans and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from resources.hub import HubResource, TableSpec

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
