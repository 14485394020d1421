"""Inventory reconciliation: a hand-built world with known conflicts, invariants under hypothesis, and checks."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.commerce import INVENTORY_ENTRIES
from assets.inventory import InventoryRules, inventory_assets, reconcile
from assets.warehouse import STOCK_LEVELS
from quality.checks import build_suite_checks
from quality.inventory import INVENTORY_SUITES
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every serving test here runs on DuckDB and on Postgres."""
    return each_hub


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
OLD, NEW = T0, T0 + timedelta(hours=3)


def load_rows(hub: HubResource, spec: TableSpec, rows: list[dict]) -> None:
    with hub.load(f"test:{spec.name}") as load:
        load.stage(spec).append(spec.to_arrow({c: [r.get(c) for r in rows] for c in spec.column_names}))


def entry(sku, location, on_stock, available, at, restock=None):
    return {
        "inventory_entry_id": f"ie-{sku}-{location}",
        "version": 1,
        "sku": sku,
        "supply_channel_id": location,
        "quantity_on_stock": on_stock,
        "available_quantity": available,
        "restockable_in_days": restock,
        "created_at": OLD,
        "last_modified_at": at,
    }


def level(sku, location, on_hand, available, at):
    return {
        "stock_level_id": f"sl-{sku}-{location}",
        "version": 1,
        "sku": sku,
        "warehouse_id": location,
        "on_hand": on_hand,
        "allocated": on_hand - available,
        "available": available,
        "updated_at": at,
    }


def rules_file(tmp_path: Path, tolerance: int = 2, on_hand: str = "warehouse", available: str = "newest") -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(f"inventory:\n  tolerance_units: {tolerance}\n  on_hand: {on_hand}\n  available: {available}\n")
    return str(path)


def small_world(hub: HubResource) -> None:
    """A agrees; B differs within tolerance; C differs beyond it with commerce newer; D with the WMS newer;
    E only in commerce; F only in the WMS; G has commerce saying more available than the WMS has on hand."""
    load_rows(
        hub,
        INVENTORY_ENTRIES,
        [
            entry("SKU-A", "wh-1", 10, 8, NEW, restock=3),
            entry("SKU-B", "wh-1", 11, 9, NEW),
            entry("SKU-C", "wh-1", 20, 15, NEW),
            entry("SKU-D", "wh-1", 20, 15, OLD),
            entry("SKU-E", "wh-2", 5, 5, NEW, restock=7),
            entry("SKU-G", "wh-2", 30, 30, NEW),
        ],
    )
    load_rows(
        hub,
        STOCK_LEVELS,
        [
            level("SKU-A", "wh-1", 10, 8, OLD),
            level("SKU-B", "wh-1", 10, 8, OLD),
            level("SKU-C", "wh-1", 12, 4, OLD),
            level("SKU-D", "wh-1", 12, 4, NEW),
            level("SKU-F", "wh-2", 6, 0, OLD),
            level("SKU-G", "wh-2", 12, 12, OLD),
        ],
    )


def materialize(hub: HubResource, rules: str, checks=()) -> dg.ExecuteInProcessResult:
    return dg.materialize([*inventory_assets, *checks], resources={"hub": hub, "rules": RulesResource(path=rules)})


def test_conflicts_are_logged_and_resolved_by_the_rules(hub: HubResource, tmp_path: Path):
    small_world(hub)
    checks = build_suite_checks(INVENTORY_SUITES, pool=HUB_POOL)
    result = materialize(hub, rules_file(tmp_path), checks)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    conflicts = hub.read_frame(
        "SELECT sku, field, commerce_value, warehouse_value, rule, resolved_from, resolved_value, "
        "commerce_updated_at, warehouse_updated_at FROM quality.inventory_conflicts ORDER BY sku, field"
    )
    logged = {(r.sku, r.field): (r.commerce_value, r.warehouse_value, r.resolved_from, r.resolved_value) for r in
              conflicts.itertuples()}  # fmt: skip
    assert logged == {
        ("SKU-C", "available"): (15, 4, "commerce", 15),
        ("SKU-C", "on_hand"): (20, 12, "warehouse", 12),
        ("SKU-D", "available"): (15, 4, "warehouse", 4),
        ("SKU-D", "on_hand"): (20, 12, "warehouse", 12),
        ("SKU-G", "on_hand"): (30, 12, "warehouse", 12),
        ("SKU-G", "available"): (30, 12, "commerce", 30),
    }
    c = conflicts.loc[conflicts["sku"] == "SKU-C"].iloc[0]
    assert (c.commerce_updated_at, c.warehouse_updated_at) == (NEW, OLD)
    availability = hub.read_frame(
        "SELECT sku, location_id, available_quantity, is_on_stock, restockable_in_days, last_synced_at "
        "FROM serving.v1_inventory_availability"
    ).set_index("sku")
    assert availability["available_quantity"].to_dict() == {
        "SKU-A": 8,
        "SKU-B": 9,  # within tolerance: the newer commerce value is taken, no conflict
        "SKU-C": 12,  # commerce's newer 15 is held to the WMS's 12 on hand
        "SKU-D": 4,
        "SKU-E": 5,
        "SKU-F": 0,
        "SKU-G": 12,
    }
    assert availability.loc["SKU-F", "is_on_stock"] == False  # noqa: E712 - numpy bool
    assert availability.loc["SKU-A", "is_on_stock"] == True  # noqa: E712
    assert availability.loc["SKU-E", "restockable_in_days"] == 7
    assert availability.loc["SKU-D", "last_synced_at"] == NEW
    positions = hub.read_frame("SELECT sku, on_hand_source, conflict_count FROM core.inventory_positions")
    assert positions.set_index("sku")["conflict_count"].to_dict()["SKU-C"] == 2
    assert positions.set_index("sku")["on_hand_source"].to_dict()["SKU-E"] == "commerce"


def test_a_wider_tolerance_and_commerce_rules_change_what_is_logged(hub: HubResource, tmp_path: Path):
    small_world(hub)
    assert materialize(hub, rules_file(tmp_path, tolerance=10, on_hand="commerce", available="commerce")).success
    conflicts = hub.read_frame("SELECT sku, field, resolved_from FROM quality.inventory_conflicts ORDER BY sku, field")
    assert list(conflicts.itertuples(index=False, name=None)) == [
        ("SKU-C", "available", "commerce"),
        ("SKU-D", "available", "commerce"),
        ("SKU-G", "available", "commerce"),
        ("SKU-G", "on_hand", "commerce"),
    ]


def test_a_rerun_replaces_conflicts_that_were_resolved(hub: HubResource, tmp_path: Path):
    small_world(hub)
    rules = rules_file(tmp_path)
    assert materialize(hub, rules).success
    load_rows(hub, INVENTORY_ENTRIES, [{**entry("SKU-C", "wh-1", 12, 4, NEW), "version": 2}])
    assert materialize(hub, rules).success
    skus = set(hub.read_frame("SELECT sku FROM quality.inventory_conflicts")["sku"])
    assert skus == {"SKU-D", "SKU-G"}


def test_a_bad_rule_fails_naming_the_field(hub: HubResource, tmp_path: Path):
    result = dg.materialize(
        inventory_assets,
        resources={"hub": hub, "rules": RulesResource(path=rules_file(tmp_path, on_hand="oldest"))},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "inventory.on_hand" in failure.step_failure_data.error.to_string()


quantities = st.one_of(st.none(), st.integers(-50, 500))
stamps = st.one_of(st.none(), st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)))


@st.composite
def worlds(draw):
    keys = draw(st.lists(st.tuples(st.sampled_from("ABCD"), st.sampled_from("xyz")), max_size=12))
    commerce = [(s, loc, draw(quantities), draw(quantities), draw(stamps)) for s, loc in keys if draw(st.booleans())]
    wms = [(s, loc, draw(quantities), draw(quantities), draw(stamps)) for s, loc in keys if draw(st.booleans())]
    entries = pd.DataFrame(
        commerce, columns=["sku", "location_id", "quantity_on_stock", "available_quantity", "last_modified_at"]
    ).assign(restockable_in_days=None)
    levels = pd.DataFrame(wms, columns=["sku", "location_id", "on_hand", "available", "updated_at"]).assign(
        allocated=None
    )
    return (
        entries,
        levels,
        InventoryRules(
            tolerance_units=draw(st.integers(0, 20)),
            on_hand=draw(st.sampled_from(["warehouse", "commerce", "newest"])),
            available=draw(st.sampled_from(["warehouse", "commerce", "newest"])),
        ),
    )


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_available_is_never_negative_nor_above_on_hand_and_keys_are_unique(world):
    entries, levels, rules = world
    positions, conflicts = reconcile(entries, levels, rules, datetime.now(UTC))
    assert (positions["available_quantity"] >= 0).all()
    known = positions["on_hand"].notna()
    assert (positions.loc[known, "available_quantity"] <= positions.loc[known, "on_hand"]).all()
    assert not positions.duplicated(["sku", "location_id"]).any()
    assert not conflicts.duplicated(["sku", "location_id", "field"]).any()
    assert (conflicts["difference"].abs() > rules.tolerance_units).all()
    expected_keys = set(zip(entries["sku"], entries["location_id"], strict=True)) | set(
        zip(levels["sku"], levels["location_id"], strict=True)
    )
    assert set(zip(positions["sku"], positions["location_id"], strict=True)) == expected_keys


@pytest.mark.parametrize("negative", [-5])
def test_negative_source_stock_is_not_sold(hub: HubResource, tmp_path: Path, negative: int):
    load_rows(hub, STOCK_LEVELS, [level("SKU-N", "wh-1", negative, negative, NEW)])
    assert materialize(hub, rules_file(tmp_path)).success
    row = hub.read_frame("SELECT available_quantity, is_on_stock FROM serving.v1_inventory_availability").iloc[0]
    assert (row.available_quantity, bool(row.is_on_stock)) == (0, False)
