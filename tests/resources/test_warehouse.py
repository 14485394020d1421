"""WarehouseResource against the simulator over real HTTP."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from resources.http import ExternalSystemError
from resources.warehouse import WarehouseResource
from simulators.warehouse import EXPIRED_API_KEY
from tests.conftest import Simulator, free_port

API_KEY = "wh_test_hub"
WRONG_KEY = "wh_wrong_5e1d"


def warehouse_resource(simulator: Simulator, **overrides) -> WarehouseResource:
    settings = dict(api_url=f"{simulator.url}/warehouse", api_key=API_KEY, backoff_initial_s=0.01, backoff_max_s=0.2)
    return WarehouseResource(**{**settings, **overrides})


@pytest.fixture
def warehouse(simulator: Simulator) -> WarehouseResource:
    return warehouse_resource(simulator)


def records(pages) -> list[dict]:
    return [record for page in pages for record in page]


@pytest.mark.parametrize(
    ("resource", "stat"),
    [
        ("warehouses", "warehouses"),
        ("stock-levels", "stock_levels"),
        ("suppliers", "suppliers"),
        ("purchase-orders", "purchase_orders"),
    ],
)
def test_a_complete_paged_export_loses_and_repeats_nothing(simulator: Simulator, resource: str, stat: str):
    warehouse = warehouse_resource(simulator, page_size=7)
    pages = list(warehouse.pages(resource))
    ids = [r["id"] for r in records(pages)]
    assert len(ids) == len(set(ids)) == simulator.stats()["warehouse"][stat]
    assert all(len(page) == 7 for page in pages[:-1]) and 0 < len(pages[-1]) <= 7


def test_pages_stream_one_request_at_a_time(simulator: Simulator, warehouse: WarehouseResource):
    before = simulator.stats()["requests"]["by_system"].get("warehouse", 0)
    first = next(warehouse.pages("stock-levels"))
    assert len(first) == 1000
    assert simulator.stats()["requests"]["by_system"]["warehouse"] == before + 1


def test_updated_since_returns_exactly_what_churn_changed(simulator: Simulator, warehouse: WarehouseResource):
    churned = simulator.admin("POST", "churn", stock_movements=30)["warehouse"]
    since = datetime.fromisoformat(churned["updated_at"])
    changed = records(warehouse.pages("stock-levels", updated_since=since))
    assert sorted(r["id"] for r in changed) == churned["stock_levels"]
    with pytest.raises(ValueError, match="no time zone"):
        next(warehouse.pages("stock-levels", updated_since=since.replace(tzinfo=None)))


def test_the_movement_feed_resumes_from_its_cursor(simulator: Simulator):
    warehouse = warehouse_resource(simulator, page_size=500)
    feed = warehouse.movement_feed()
    movements = records(feed)
    stats = simulator.stats()["warehouse"]
    assert [m["sequence"] for m in movements] == list(range(1, stats["last_sequence"] + 1))
    cursor = feed.cursor
    assert cursor is not None
    again = warehouse.movement_feed(cursor)
    assert records(again) == [] and again.cursor == cursor
    churned = simulator.admin("POST", "churn", stock_movements=12)["warehouse"]
    later = warehouse.movement_feed(cursor)
    assert [m["id"] for m in records(later)] == churned["stock_movements"]
    assert later.cursor != cursor and records(warehouse.movement_feed(later.cursor)) == []


def test_an_empty_feed_keeps_no_cursor(simulator: Simulator, warehouse: WarehouseResource):
    simulator.reset(products=0)
    feed = warehouse.movement_feed()
    assert records(feed) == [] and feed.cursor is None


def test_transient_failures_are_retried(simulator: Simulator, warehouse: WarehouseResource):
    simulator.admin("POST", "faults", faults=[{"status": 503, "next": 2, "path_prefix": "/warehouse"}])
    assert len(records(warehouse.pages("warehouses"))) == 8
    assert simulator.stats()["requests"]["by_status"]["503"] >= 2


def test_a_wrong_api_key_names_the_setting_and_hides_the_key(simulator: Simulator):
    warehouse = warehouse_resource(simulator, api_key=WRONG_KEY)
    with pytest.raises(ExternalSystemError) as failure:
        list(warehouse.pages("warehouses"))
    message = str(failure.value)
    assert failure.value.status == 401 and "the API key was rejected (unauthorized)" in message
    assert "WAREHOUSE_API_KEY" in message and WRONG_KEY not in message and API_KEY not in message
    with pytest.raises(ExternalSystemError, match="WAREHOUSE_API_KEY"):
        list(warehouse.movement_feed())


def test_an_expired_api_key_is_reported_as_expired(simulator: Simulator):
    with pytest.raises(ExternalSystemError) as failure:
        list(warehouse_resource(simulator, api_key=EXPIRED_API_KEY).pages("warehouses"))
    message = str(failure.value)
    assert failure.value.status == 401 and failure.value.code == "api_key_expired"
    assert "the API key has expired (api_key_expired)" in message and "(check WAREHOUSE_API_KEY)" in message
    assert EXPIRED_API_KEY not in message


def test_an_unreachable_api_names_the_url_setting(simulator: Simulator):
    warehouse = warehouse_resource(simulator, api_url=f"http://127.0.0.1:{free_port()}/warehouse", max_attempts=2)
    with pytest.raises(ExternalSystemError, match=r"after 2 attempt.*cannot reach .*WAREHOUSE_API_URL"):
        list(warehouse.pages("suppliers"))


def test_a_wrong_base_url_names_the_url_setting(simulator: Simulator):
    warehouse = warehouse_resource(simulator, api_url=f"{simulator.url}/warehouse/v1")
    with pytest.raises(ExternalSystemError, match=r"HTTP 404.*WAREHOUSE_API_URL"):
        list(warehouse.pages("suppliers"))


def test_supplier_files_lists_the_csv_files_of_the_landing_directory(simulator: Simulator, tmp_path: Path):
    for name in ("suppliers_2026-11-27.csv", "suppliers_2026-11-26.csv", "notes.txt", ".suppliers_x.csv.partial"):
        (tmp_path / name).write_text("x")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "suppliers_2026-11-01.csv").write_text("x")
    warehouse = warehouse_resource(simulator, landing_dir=str(tmp_path))
    assert [p.name for p in warehouse.supplier_files()] == ["suppliers_2026-11-26.csv", "suppliers_2026-11-27.csv"]
    missing = warehouse_resource(simulator, landing_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist \(check WAREHOUSE_LANDING_DIR\)"):
        missing.supplier_files()


def test_stock_levels_cover_every_catalog_sku(simulator: Simulator, warehouse: WarehouseResource):
    levels = records(warehouse.pages("stock-levels"))
    per_sku = Counter(r["sku"] for r in levels)
    assert len(per_sku) == simulator.stats()["commerce"]["skus"]
    assert min(per_sku.values()) >= 3
