"""Real Great Expectations runs of the commerce suites on small in-memory frames."""

import re

import pandas as pd
import pytest
from great_expectations import expectations as gxe

from quality.commerce import (
    COMMERCE_SUITES,
    categories_suite,
    channels_suite,
    inventory_entries_suite,
    prices_suite,
    product_variants_suite,
    products_suite,
)
from quality.reference import ISO_4217_ACTIVE, SKU_PATTERN
from quality.validation import LARGE_FRAME_ROWS, LARGE_VALUE_SET, MAX_FAILING_KEYS, DatasetSuite, run_suite

NOT_NULL = "expect_column_values_to_not_be_null({})"
UNIQUE = "expect_column_values_to_be_unique({})"
IN_SET = "expect_column_values_to_be_in_set({})"
ROW_COUNT = "expect_table_row_count_to_be_between(min_value=1)"
SKUS = ["ABC-000001-01", "ABC-000001-02", "XYZ-000002-01"]


def variants() -> pd.DataFrame:
    return pd.DataFrame(
        {"product_id": ["p1", "p1", "p2"], "variant_id": [1, 2, 1], "sku": list(SKUS)},
    )


def prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price_id": ["pr1", "pr2", "pr3"],
            "sku": list(SKUS),
            "currency": ["EUR", "USD", "GBP"],
            "cent_amount": [1999, 0, 250],
            "fraction_digits": [2, 2, 2],
        }
    )


def inventory() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "inventory_entry_id": ["ie1", "ie2", "ie3"],
            "sku": list(SKUS),
            "quantity_on_stock": [10, 0, 5],
            "available_quantity": [8, 0, 5],
        }
    )


REFS = {"variant_skus": list(SKUS)}

CLEAN = {
    "products_suite": (products_suite, lambda: pd.DataFrame({"product_id": ["p1", "p2"]}), {}),
    "product_variants_suite": (product_variants_suite, variants, {}),
    "prices_suite": (prices_suite, prices, {}),
    "inventory_entries_suite": (inventory_entries_suite, inventory, REFS),
    "channels_suite": (
        channels_suite,
        lambda: pd.DataFrame({"channel_id": ["c1", "c2"], "latitude": [52.5, -33.9], "longitude": [13.4, 151.2]}),
        {},
    ),
    "categories_suite": (categories_suite, lambda: pd.DataFrame({"category_id": ["k1", "k2"]}), {}),
}


def failed_labels(result) -> set[str]:
    return {o.label for o in result.failed}


@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_frame_passes(name):
    suite, make_frame, refs = CLEAN[name]
    frame = make_frame()
    result = run_suite(suite, frame, refs)
    assert result.success, result.summary()
    assert result.rows_checked == len(frame)
    assert result.pass_rate == 1.0
    assert result.unexpected_rows == 0
    assert all(o.failing_keys == () for o in result.outcomes)
    # Outcomes come back in the order the suite declared them, starting with the row count.
    assert result.outcomes[0].label == ROW_COUNT
    assert result.outcomes[0].observed_value == len(frame)


def test_every_commerce_suite_fails_an_empty_table_loudly():
    for suite in COMMERCE_SUITES:
        expectations = suite.expectations({name: [] for name in suite.references})
        assert any(isinstance(e, gxe.ExpectTableRowCountToBeBetween) and e.min_value == 1 for e in expectations), (
            suite.name
        )


def test_empty_frame_fails_only_the_row_count():
    empty = prices().iloc[0:0]
    result = run_suite(prices_suite, empty)
    assert not result.success
    assert result.rows_checked == 0
    assert failed_labels(result) == {ROW_COUNT}
    assert result.outcome(ROW_COUNT).observed_value == 0
    n = len(result.outcomes)
    assert result.pass_rate == pytest.approx((n - 1) / n)


def test_null_key_is_named():
    frame = variants()
    frame.loc[1, "product_id"] = None
    result = run_suite(product_variants_suite, frame)
    assert NOT_NULL.format("product_id") in failed_labels(result)
    outcome = result.outcome(NOT_NULL.format("product_id"))
    assert outcome.unexpected_count == 1
    assert outcome.failing_keys == ({"product_id": None, "variant_id": 2, "sku": "ABC-000001-02"},)


def test_duplicate_key_names_both_rows():
    frame = prices()
    frame.loc[2, "price_id"] = "pr1"
    result = run_suite(prices_suite, frame)
    assert failed_labels(result) == {UNIQUE.format("price_id")}
    outcome = result.outcome(UNIQUE.format("price_id"))
    assert outcome.unexpected_count == 2  # GX counts every row sharing a duplicated value
    assert sorted(k["sku"] for k in outcome.failing_keys) == ["ABC-000001-01", "XYZ-000002-01"]
    assert {k["price_id"] for k in outcome.failing_keys} == {"pr1"}
    assert result.unexpected_rows == 2


def test_duplicate_compound_variant_key():
    frame = variants()
    frame.loc[2, ["product_id", "variant_id"]] = ["p1", 1]
    result = run_suite(product_variants_suite, frame)
    label = "expect_compound_columns_to_be_unique(product_id, variant_id)"
    assert failed_labels(result) == {label}
    outcome = result.outcome(label)
    assert outcome.unexpected_count == 2
    assert sorted(k["sku"] for k in outcome.failing_keys) == ["ABC-000001-01", "XYZ-000002-01"]


def test_bad_sku_format():
    frame = variants()
    frame.loc[0, "sku"] = "abc-1-1"
    result = run_suite(product_variants_suite, frame)
    label = f"expect_column_values_to_match_regex(sku, regex={SKU_PATTERN})"
    assert failed_labels(result) == {label}
    outcome = result.outcome(label)
    assert outcome.unexpected_count == 1
    assert outcome.unexpected_percent == pytest.approx(100 / 3)
    assert outcome.failing_keys == ({"product_id": "p1", "variant_id": 1, "sku": "abc-1-1"},)


def test_negative_cent_amount():
    frame = prices()
    frame.loc[1, "cent_amount"] = -1
    result = run_suite(prices_suite, frame)
    label = "expect_column_values_to_be_between(cent_amount, min_value=0)"
    assert failed_labels(result) == {label}
    assert result.outcome(label).unexpected_count == 1
    assert result.outcome(label).failing_keys == ({"price_id": "pr2", "sku": "ABC-000001-02"},)
    assert result.pass_rate == pytest.approx((len(result.outcomes) - 1) / len(result.outcomes))


def test_unknown_currency():
    frame = prices()
    frame.loc[2, "currency"] = "ZZZ"
    result = run_suite(prices_suite, frame)
    assert failed_labels(result) == {IN_SET.format("currency")}
    outcome = result.outcome(IN_SET.format("currency"))
    assert outcome.unexpected_count == 1
    assert outcome.failing_keys == ({"price_id": "pr3", "sku": "XYZ-000002-01"},)


def test_fraction_digits_out_of_range():
    frame = prices()
    frame.loc[0, "fraction_digits"] = 5
    result = run_suite(prices_suite, frame)
    label = "expect_column_values_to_be_between(fraction_digits, min_value=0, max_value=4)"
    assert failed_labels(result) == {label}
    assert result.outcome(label).failing_keys == ({"price_id": "pr1", "sku": "ABC-000001-01"},)


def test_negative_stock():
    frame = inventory()
    frame.loc[2, "quantity_on_stock"] = -4
    result = run_suite(inventory_entries_suite, frame, REFS)
    label = "expect_column_values_to_be_between(quantity_on_stock, min_value=0)"
    assert failed_labels(result) == {label}
    assert result.outcome(label).unexpected_count == 1
    assert result.outcome(label).failing_keys == ({"inventory_entry_id": "ie3", "sku": "XYZ-000002-01"},)


@pytest.mark.parametrize("extra_skus", [0, LARGE_VALUE_SET + 500], ids=["small-set", "large-set"])
def test_orphan_inventory_sku(extra_skus):
    """Both paths agree: GX's own set check, and the membership column used for large sets."""
    refs = {"variant_skus": [*SKUS, *(f"QQQ-{i:06d}-01" for i in range(extra_skus))]}
    frame = pd.concat([inventory()] * 2, ignore_index=True)
    frame["inventory_entry_id"] = [f"ie{i}" for i in range(len(frame))]
    frame.loc[4, "sku"] = "NOP-999999-99"
    frame.loc[5, "sku"] = None  # null skus are the not-null rule's business, not the set rule's
    result = run_suite(inventory_entries_suite, frame, refs)
    assert failed_labels(result) == {IN_SET.format("sku"), NOT_NULL.format("sku")}
    outcome = result.outcome(IN_SET.format("sku"))
    assert outcome.unexpected_count == 1
    assert outcome.unexpected_percent == pytest.approx(100 / 5)  # of the non-null skus
    assert outcome.failing_keys == ({"inventory_entry_id": "ie4", "sku": "NOP-999999-99"},)
    assert result.outcome(NOT_NULL.format("sku")).failing_keys == ({"inventory_entry_id": "ie5", "sku": None},)
    assert result.outcomes[0].label == ROW_COUNT


def test_channel_coordinates_in_range():
    suite, make_frame, _ = CLEAN["channels_suite"]
    frame = make_frame()
    frame.loc[0, "latitude"] = 91.0
    frame.loc[1, "longitude"] = -180.5
    result = run_suite(suite, frame)
    assert failed_labels(result) == {
        "expect_column_values_to_be_between(latitude, min_value=-90, max_value=90)",
        "expect_column_values_to_be_between(longitude, min_value=-180, max_value=180)",
    }


def test_failing_keys_are_sampled_but_counts_are_exact():
    n = 50
    frame = pd.DataFrame(
        {
            "price_id": [f"pr{i}" for i in range(n)],
            "sku": [f"ABC-{i:06d}-01" for i in range(n)],
            "currency": ["EUR"] * n,
            "cent_amount": [-i - 1 for i in range(n)],
            "fraction_digits": [2] * n,
        }
    )
    result = run_suite(prices_suite, frame)
    outcome = result.outcome("expect_column_values_to_be_between(cent_amount, min_value=0)")
    assert outcome.unexpected_count == n
    assert len(outcome.failing_keys) == MAX_FAILING_KEYS
    assert outcome.as_dict()["unexpected_count"] == n


def test_missing_reference_is_an_error():
    with pytest.raises(ValueError, match="variant_skus"):
        run_suite(inventory_entries_suite, inventory(), {})


def test_missing_column_fails_with_the_gx_error():
    result = run_suite(prices_suite, prices().drop(columns=["currency"]))
    outcome = result.outcome(IN_SET.format("currency"))
    assert not outcome.success
    assert "currency" in (outcome.error or "")


def test_duplicate_labels_stay_distinct():
    suite = DatasetSuite(
        name="twice_suite",
        table="core.things",
        key_columns=("id",),
        expectations=lambda _: [
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
        ],
    )
    result = run_suite(suite, pd.DataFrame({"id": [1, None]}))
    assert [o.label for o in result.outcomes] == [NOT_NULL.format("id"), NOT_NULL.format("id") + " #2"]


def test_select_sql_reads_key_columns_first():
    assert prices_suite.select_sql() == (
        "SELECT price_id, sku, currency, cent_amount, fraction_digits FROM core.prices"
    )
    everything = DatasetSuite(name="all_suite", table="core.x", key_columns=("id",), expectations=list)
    assert everything.select_sql() == "SELECT * FROM core.x"


def test_iso_4217_reference():
    assert {"EUR", "USD", "GBP", "JPY", "CHF", "XCG", "ZWG"} <= ISO_4217_ACTIVE
    assert not {"ZZZ", "HRK", "eur", "DEM"} & ISO_4217_ACTIVE
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ISO_4217_ACTIVE)
    assert len(ISO_4217_ACTIVE) > 170


@pytest.mark.parametrize("values", [[1, 2], ["1", "2"]], ids=["same-type", "other-type"])
def test_large_sets_of_numbers_check_membership_like_pandas(values):
    """The membership column matches Arrow types, and falls back to pandas where they differ."""
    members = [*values, *range(10, 10 + LARGE_VALUE_SET)]
    suite = DatasetSuite(
        name="codes_suite",
        table="core.codes",
        key_columns=("code",),
        expectations=lambda refs: [gxe.ExpectColumnValuesToBeInSet(column="code", value_set=members)],
    )
    result = run_suite(suite, pd.DataFrame({"code": pd.array([1, 2, 3, None], dtype="Int64")}))
    outcome = result.outcome(IN_SET.format("code"))
    expected = [{"code": 3}] if values == [1, 2] else [{"code": 1}, {"code": 2}, {"code": 3}]
    assert list(outcome.failing_keys) == expected
    assert outcome.unexpected_count == len(expected)


def test_narrow_integer_columns_validate_like_bigint_ones():
    """INTEGER columns are widened for GX's vectorised comparisons; outcomes are those of BIGINT columns."""
    frame = prices()
    frame.loc[1, "cent_amount"] = -1
    frame.loc[2, "fraction_digits"] = 9
    narrow = frame.astype({"cent_amount": "int32", "fraction_digits": "int16"})
    result = run_suite(prices_suite, narrow)
    assert len(result.failed) == 2
    assert result.outcomes == run_suite(prices_suite, frame).outcomes


@pytest.mark.parametrize("rows", [10, LARGE_FRAME_ROWS + 10], ids=["gx-check", "helper-column"])
def test_uniqueness_is_the_same_on_small_and_large_frames(rows):
    """GX's own uniqueness check, and the Arrow helper column used on large frames, flag the same rows."""
    suite = DatasetSuite(
        name="ids_suite",
        table="core.ids",
        key_columns=("id",),
        columns=("id", "n"),
        expectations=lambda _: [gxe.ExpectColumnValuesToBeUnique(column="id")],
    )
    frame = pd.DataFrame({"id": [f"id{i}" for i in range(rows)], "n": range(rows)})
    frame.loc[3, "id"] = frame.loc[rows - 1, "id"]  # one value twice: both rows fail
    frame.loc[5, "id"] = None  # nulls are skipped, as GX skips them
    result = run_suite(suite, frame)
    outcome = result.outcome(UNIQUE.format("id"))
    assert not result.success
    assert outcome.column == "id"
    assert outcome.unexpected_count == 2
    assert outcome.unexpected_percent == pytest.approx(100 * 2 / (rows - 1))
    assert sorted(k["id"] for k in outcome.failing_keys) == [f"id{rows - 1}"] * 2
