"""The row gate on its own: row rules in one GX validation, quarantine and counts in the same load, the threshold."""

import dagster as dg
import orjson
import pandas as pd
import pytest

from assets.commerce import PRICES
from quality.commerce import prices_suite
from quality.config import QualityRules
from quality.rows import BATCH_COUNTS, VALIDATE_BYTES, RowGate
from quality.validation import validate_rows
from resources.hub import HubResource

CENTS = "expect_column_values_to_be_between(cent_amount, min_value=0)"
CURRENCY = "expect_column_values_to_be_in_set(currency)"


def prices(*rows: tuple[str, str, int]) -> dict[str, list]:
    """Price columns for rows of (price_id, currency, cent_amount)."""
    columns = {name: [None] * len(rows) for name in PRICES.column_names}
    columns["price_id"] = [r[0] for r in rows]
    columns["product_id"] = ["p1"] * len(rows)
    columns["variant_id"] = [1] * len(rows)
    columns["sku"] = ["ABC-000001-01"] * len(rows)
    columns["currency"] = [r[1] for r in rows]
    columns["cent_amount"] = [r[2] for r in rows]
    columns["fraction_digits"] = [2] * len(rows)
    return columns


def test_validate_rows_finds_failing_rows_by_position_even_without_a_key():
    """A null currency is not outside the set (as GX's own set check skips nulls)."""
    rows = prices(("a", "EUR", 100), ("b", "ZZZ", -1), (None, "USD", -5), ("d", None, 100))
    frame = pd.DataFrame(rows).drop(columns="valid_from")
    failures = validate_rows(prices_suite, frame, QualityRules())
    assert failures == {1: [(CENTS, "cent_amount"), (CURRENCY, "currency")], 2: [(CENTS, "cent_amount")]}
    assert validate_rows(prices_suite, frame, QualityRules(extra_currencies=["ZZZ"]))[1] == [(CENTS, "cent_amount")]


@pytest.mark.parametrize(
    ("bad", "total", "tolerated", "refused"),
    [(1, 100, 0, False), (2, 100, 0, True), (2, 100, 2, False), (3, 100, 2, True), (0, 0, 0, False)],
)
def test_a_batch_is_refused_above_the_fraction_and_the_tolerated_rows(bad, total, tolerated, refused):
    rules = QualityRules(max_bad_row_fraction={"default": 0.01}, tolerated_bad_rows=tolerated)
    assert rules.refuses("core.prices", bad, total) is refused


@pytest.mark.parametrize("validate_bytes", [VALIDATE_BYTES, 1], ids=["one frame", "a frame per append"])
def test_the_gate_stages_good_rows_and_quarantines_bad_ones_in_one_load(hub: HubResource, validate_bytes: int):
    rows = prices(("a", "EUR", 100), ("b", "ZZZ", 200), ("c", "USD", -5), ("d", "USD", 300))
    with hub.load("test") as load:
        gate = RowGate(
            load,
            PRICES,
            prices_suite,
            QualityRules(tolerated_bad_rows=5),
            source="raw.x",
            load_id="L1",
            run_id="R1",
            validate_bytes=validate_bytes,
        )
        gate.append(PRICES.to_arrow({k: v[:2] for k, v in rows.items()}))
        gate.append(PRICES.to_arrow({k: v[2:] for k, v in rows.items()}))
        count = gate.close()
    assert (count.source_rows, count.staged_rows, count.quarantined_rows) == (4, 2, 2)
    assert sorted(hub.read_frame("SELECT price_id FROM core.prices")["price_id"]) == ["a", "d"]
    held = hub.read_frame("SELECT * FROM quality.quarantine ORDER BY record_key")
    assert list(held["expectation"]) == [CURRENCY, CENTS]
    assert orjson.loads(held["record"].iloc[1])["cent_amount"] == -5
    assert set(held["load_id"]) == {"L1"} and set(held["run_id"]) == {"R1"}
    assert set(held["_batch_id"]) == {load.batch_id}
    counts = hub.read_frame(f"SELECT * FROM {BATCH_COUNTS.name}")
    assert counts[["source_rows", "staged_rows", "quarantined_rows"]].values.tolist() == [[4, 2, 2]]


def test_a_refused_batch_leaves_the_hub_unchanged(hub: HubResource):
    rows = prices(("a", "EUR", 100), ("b", "ZZZ", 200))
    with pytest.raises(dg.Failure) as refused, hub.load("test") as load:
        gate = RowGate(load, PRICES, prices_suite, QualityRules(), source="raw.x", load_id="L1")
        gate.append(PRICES.to_arrow(rows))
        gate.close()
    assert "core.prices: 1 of 2 rows (50.00%)" in refused.value.description
    assert "quality.max_bad_row_fraction.default = 0.01" in refused.value.description
    assert refused.value.metadata["failing_keys"].value == {CURRENCY: [{"price_id": "b", "sku": "ABC-000001-01"}]}
    for table in ("core.prices", "quality.quarantine", BATCH_COUNTS.name):
        assert not hub.backend.table_exists(table) or hub.scalar(f"SELECT count(*) FROM {table}") == 0
