"""Contract tests for the warehouse (WMS) simulator and its supplier CSV feeds (real HTTP, subprocess)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest
import requests

from simulators.warehouse import EXPIRED_API_KEY
from tests.simulators.conftest import REPO_ROOT, SIM_PRODUCTS, SIM_SEED

KEY = {"X-Api-Key": "wh_test_hub"}
HEADER = ["supplier_id", "supplier_sku", "sku", "unit_cost", "currency", "min_order_qty", "available_to_promise"]


def admin(base: str, method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(method, f"{base}/_admin/{path}", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def get(base: str, path: str, headers: dict | None = KEY, **params) -> requests.Response:
    return requests.get(f"{base}/warehouse/v1/{path}", params=params, headers=headers, timeout=30)


def ok(base: str, path: str, **params) -> dict:
    r = get(base, path, **params)
    assert r.status_code == 200, r.text
    return r.json()


def export(base: str, resource: str, limit: int = 1000, **params) -> tuple[list[dict], int]:
    """Every record by cursor paging, and the number of pages."""
    out, pages, cursor = [], 0, None
    while True:
        body = ok(base, resource, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        out.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out, pages
        assert len(body["data"]) == limit


def feed(base: str, after: str | None = None, limit: int = 1000) -> tuple[list[dict], str | None]:
    """Every movement after `after`, and the cursor to read on from."""
    out, cursor = [], after
    while True:
        body = ok(base, "stock-movements", limit=limit, **({"after": cursor} if cursor else {}))
        out.extend(body["data"])
        cursor = body["next_cursor"]
        if len(body["data"]) < limit:
            return out, cursor


def error(r: requests.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]["message"]


def commerce_get(base: str, resource: str) -> list[dict]:
    token = requests.post(
        f"{base}/commerce/oauth/token",
        params={"grant_type": "client_credentials"},
        auth=("hub-client", "hub-secret"),
        timeout=10,
    ).json()["access_token"]
    out, last = [], None
    while True:
        params = {"sort": "id asc", "limit": 500, "withTotal": "false"}
        if last:
            params["where"] = f'id > "{last}"'
        body = requests.get(
            f"{base}/commerce/beauty-hub/{resource}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        out.extend(body["results"])
        if body["count"] < 500:
            return out
        last = body["results"][-1]["id"]


@pytest.fixture
def world(clean_world: str) -> str:
    return clean_world


# --- auth and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [None, {"X-Api-Key": "wrong-key-9c1"}, {"Authorization": "Bearer wh_test_hub"}])
def test_calls_need_the_api_key(commerce_sim: str, headers: dict | None) -> None:
    message = error(get(commerce_sim, "warehouses", headers=headers), 401, "unauthorized")
    assert "X-Api-Key" in message and "wrong-key-9c1" not in message


def test_the_expired_key_is_refused_as_expired(commerce_sim: str) -> None:
    message = error(get(commerce_sim, "warehouses", headers={"X-Api-Key": EXPIRED_API_KEY}), 401, "api_key_expired")
    assert "expired" in message and "X-Api-Key" in message and EXPIRED_API_KEY not in message


def test_an_expire_token_fault_expires_the_key_in_use(world: str) -> None:
    admin(world, "POST", "faults", {"faults": [{"kind": "expire_token", "next": 1, "path_prefix": "/warehouse"}]})
    message = error(get(world, "warehouses"), 401, "api_key_expired")
    assert KEY["X-Api-Key"] not in message
    assert get(world, "warehouses").status_code == 200


def test_errors(commerce_sim: str) -> None:
    error(get(commerce_sim, "nowhere"), 404, "not_found")
    error(get(commerce_sim, "stock-levels/SL-99999999"), 404, "not_found")
    error(requests.get(f"{commerce_sim}/warehouse/v2/warehouses", headers=KEY, timeout=10), 404, "not_found")
    r = requests.post(f"{commerce_sim}/warehouse/v1/warehouses", headers=KEY, timeout=10)
    error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1.5"])
def test_limit_out_of_range(commerce_sim: str, limit: str) -> None:
    assert "limit" in error(get(commerce_sim, "stock-levels", limit=limit), 400, "invalid_parameter")


def test_cursors_are_checked(commerce_sim: str) -> None:
    error(get(commerce_sim, "stock-levels", cursor="not-a-cursor"), 400, "invalid_cursor")
    other = ok(commerce_sim, "purchase-orders", limit=1)["next_cursor"]
    error(get(commerce_sim, "stock-levels", cursor=other), 400, "invalid_cursor")
    feed_cursor = ok(commerce_sim, "stock-movements", limit=1)["next_cursor"]
    error(get(commerce_sim, "stock-levels", cursor=feed_cursor), 400, "invalid_cursor")
    error(get(commerce_sim, "stock-movements", after=other), 400, "invalid_cursor")
    error(get(commerce_sim, "stock-levels", updated_since="yesterday"), 400, "invalid_parameter")


# --- the world -------------------------------------------------------------------------------


def test_warehouses_are_the_commerce_supply_channels(world: str) -> None:
    warehouses = ok(world, "warehouses")["data"]
    channels = {c["id"]: c for c in commerce_get(world, "channels")}
    assert {w["id"] for w in warehouses} == set(channels)
    for w in warehouses:
        channel = channels[w["id"]]
        assert w["code"] == channel["key"] and w["country"] == channel["address"]["country"]
        assert [w["longitude"], w["latitude"]] == channel["geoLocation"]["coordinates"]
        assert w["capacity_units"] > 0 and w["name"] == channel["name"]["en-US"]


def test_stock_levels_match_the_commerce_inventory_pairs(world: str) -> None:
    levels, _ = export(world, "stock-levels")
    inventory = commerce_get(world, "inventory")
    assert {(x["sku"], x["warehouse_id"]): (x["on_hand"], x["available"]) for x in levels} == {
        (e["sku"], e["supplyChannel"]["id"]): (e["quantityOnStock"], e["availableQuantity"]) for e in inventory
    }
    assert all(0 <= x["available"] == x["on_hand"] - x["allocated"] <= x["on_hand"] for x in levels)


def test_every_stock_level_is_the_sum_of_its_movements(world: str) -> None:
    admin(world, "POST", "churn", {"stock_movements": 300, "seed": 3})
    movements, _ = feed(world)
    assert [m["sequence"] for m in movements] == list(range(1, len(movements) + 1))
    assert set(Counter(m["type"] for m in movements)) == {"receipt", "pick", "adjustment", "transfer"}
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for m in movements:
        totals[(m["sku"], m["warehouse_id"])] += m["quantity"]
    levels = {(x["sku"], x["warehouse_id"]): x["on_hand"] for x in export(world, "stock-levels")[0]}
    assert set(totals) <= set(levels)
    assert all(on_hand == totals.get(pair, 0) for pair, on_hand in levels.items())


def test_suppliers_and_purchase_orders(world: str) -> None:
    suppliers = {s["id"]: s for s in ok(world, "suppliers")["data"]}
    assert len(suppliers) == 20 and all(
        s["lead_time_days"] >= 0 and s["currency"] in {"USD", "EUR", "GBP"} for s in suppliers.values()
    )
    orders, _ = export(world, "purchase-orders", limit=7)
    warehouses = {w["id"] for w in ok(world, "warehouses")["data"]}
    statuses = Counter(o["status"] for o in orders)
    assert set(statuses) <= {"draft", "open", "partially_received", "received", "cancelled"} and len(statuses) >= 4
    for o in orders:
        assert o["supplier_id"] in suppliers and o["warehouse_id"] in warehouses
        assert o["created_at"] <= o["updated_at"] and o["created_at"] < o["expected_at"]
        received = [(x["quantity_received"], x["quantity_ordered"]) for x in o["lines"]]
        assert all(0 <= r <= q for r, q in received) and [x["line_id"] for x in o["lines"]] == list(
            range(1, len(received) + 1)
        )
        assert all(
            x["currency"] == suppliers[o["supplier_id"]]["currency"] and x["unit_cost_minor"] > 0 for x in o["lines"]
        )
        if o["status"] == "received":
            assert all(r == q for r, q in received)
        if o["status"] in ("draft", "open", "cancelled"):
            assert all(r == 0 for r, _ in received)
        if o["status"] == "partially_received":
            assert any(0 < r < q for r, q in received) or 0 < sum(r for r, _ in received) < sum(q for _, q in received)


def test_stats_match_the_api(world: str) -> None:
    stats = admin(world, "GET", "stats")["warehouse"]
    orders, _ = export(world, "purchase-orders")
    levels, _ = export(world, "stock-levels")
    movements, _ = feed(world)
    assert stats == {
        "warehouses": len(ok(world, "warehouses")["data"]),
        "stock_levels": len(levels),
        "stock_movements": len(movements),
        "last_sequence": movements[-1]["sequence"],
        "skus": len({x["sku"] for x in levels}),
        "suppliers": len(ok(world, "suppliers")["data"]),
        "purchase_orders": len(orders),
        "purchase_order_lines": sum(len(o["lines"]) for o in orders),
    }


def test_reset_is_deterministic_and_rebuilds_the_warehouse(world: str) -> None:
    before = export(world, "stock-levels")[0]
    admin(world, "POST", "churn", {"stock_movements": 50})
    assert export(world, "stock-levels")[0] != before
    admin(world, "POST", "reset", {"seed": SIM_SEED, "products": SIM_PRODUCTS})
    assert export(world, "stock-levels")[0] == before
    assert admin(world, "POST", "reset", {"products": 40})["warehouse"]["stock_levels"] < len(before)


# --- paging ---------------------------------------------------------------------------------


def test_default_page_and_limits(world: str) -> None:
    assert len(ok(world, "stock-levels")["data"]) == 100
    assert len(ok(world, "stock-levels", limit=1000)["data"]) == 1000
    body = ok(world, "warehouses")
    assert len(body["data"]) == 8 and body["next_cursor"] is None


@pytest.mark.parametrize(
    ("resource", "limit"), [("stock-levels", 97), ("stock-levels", 1000), ("purchase-orders", 1), ("suppliers", 3)]
)
def test_cursor_paging_loses_and_repeats_nothing(world: str, resource: str, limit: int) -> None:
    records, pages = export(world, resource, limit=limit)
    ids = [x["id"] for x in records]
    assert len(ids) == len(set(ids)) == admin(world, "GET", "stats")["warehouse"][resource.replace("-", "_")]
    assert pages == -(-len(ids) // limit)
    assert [(x["updated_at"], x["id"]) for x in records] == sorted((x["updated_at"], x["id"]) for x in records)


def test_updated_at_ties_page_cleanly(world: str) -> None:
    levels, _ = export(world, "stock-levels", limit=3)
    ties = Counter(x["updated_at"] for x in levels)
    assert max(ties.values()) > 3, "the world has many records sharing one millisecond"
    assert len({x["id"] for x in levels}) == len(levels)


def test_updated_since_filters_and_combines_with_the_cursor(world: str) -> None:
    levels, _ = export(world, "stock-levels")
    since = sorted(x["updated_at"] for x in levels)[len(levels) // 2]
    wanted = sorted(x["id"] for x in levels if x["updated_at"] >= since)
    found, _ = export(world, "stock-levels", limit=50, updated_since=since)
    assert sorted(x["id"] for x in found) == wanted
    same_instant = datetime.fromisoformat(since).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert sorted(x["id"] for x in export(world, "stock-levels", updated_since=same_instant)[0]) == wanted


def test_churn_moves_exactly_the_touched_levels_to_the_end(world: str) -> None:
    result = admin(world, "POST", "churn", {"stock_movements": 40, "seed": 11})["warehouse"]
    assert len(result["stock_movements"]) == 40
    changed, _ = export(world, "stock-levels", updated_since=result["updated_at"])
    assert sorted(x["id"] for x in changed) == result["stock_levels"]
    assert {x["updated_at"] for x in changed} == {result["updated_at"]}
    level = ok(world, f"stock-levels/{result['stock_levels'][0]}")
    assert level["updated_at"] == result["updated_at"] and level["version"] >= 2


# --- the movement feed ----------------------------------------------------------------------


def test_reading_after_the_last_cursor_returns_nothing_and_the_same_cursor(world: str) -> None:
    movements, cursor = feed(world, limit=333)
    assert movements and cursor
    assert ok(world, "stock-movements", after=cursor) == {"data": [], "next_cursor": cursor}
    first = ok(world, "stock-movements", limit=1)
    assert first["data"] == movements[:1]
    assert ok(world, "stock-movements", limit=2, after=first["next_cursor"])["data"] == movements[1:3]


def test_the_feed_resumes_after_a_cursor_with_exactly_the_new_movements(world: str) -> None:
    old, cursor = feed(world)
    churned = admin(world, "POST", "churn", {"stock_movements": 25})["warehouse"]
    new, after = feed(world, cursor, limit=10)
    assert [m["id"] for m in new] == churned["stock_movements"]
    assert [m["sequence"] for m in new] == list(range(len(old) + 1, len(old) + 26))
    assert {m["occurred_at"] for m in new} == {churned["updated_at"]}
    transfers = [m for m in new if m["type"] == "transfer"]
    assert sum(m["quantity"] for m in transfers) == 0
    assert ok(world, "stock-movements", after=after)["data"] == []


# --- admin: inject and faults ---------------------------------------------------------------


def test_default_inject_kinds_leave_the_warehouse_alone(world: str) -> None:
    before = admin(world, "GET", "stats")["warehouse"]
    planted = admin(world, "POST", "inject", {})
    assert "negative_on_hand" not in planted
    assert admin(world, "GET", "stats")["warehouse"] == before


def test_inject_plants_every_warehouse_kind(world: str) -> None:
    kinds = [
        "negative_on_hand",
        "available_above_on_hand",
        "unknown_warehouse_sku",
        "unknown_warehouse",
        "negative_lead_time",
        "negative_unit_cost",
        "unknown_supplier_currency",
    ]
    planted = admin(world, "POST", "inject", {"kinds": kinds, "seed": 5})
    assert set(planted) == set(kinds)
    level = ok(world, f"stock-levels/{planted['negative_on_hand']['stock_level_id']}")
    assert level["on_hand"] < 0 and level["available"] == level["on_hand"]
    level = ok(world, f"stock-levels/{planted['available_above_on_hand']['stock_level_id']}")
    assert level["available"] > level["on_hand"]
    orphan = ok(world, f"stock-levels/{planted['unknown_warehouse_sku']['stock_level_id']}")
    assert orphan["sku"].startswith("ZZZ-") and orphan["on_hand"] > 0
    stray = ok(world, f"stock-levels/{planted['unknown_warehouse']['stock_level_id']}")
    assert stray["warehouse_id"] not in {w["id"] for w in ok(world, "warehouses")["data"]}
    assert ok(world, f"suppliers/{planted['negative_lead_time']['supplier_id']}")["lead_time_days"] < 0
    assert ok(world, f"suppliers/{planted['unknown_supplier_currency']['supplier_id']}")["currency"] == "ZZZ"
    order = ok(world, f"purchase-orders/{planted['negative_unit_cost']['purchase_order_id']}")
    assert order["lines"][0]["unit_cost_minor"] < 0
    movements = {m["id"]: m for m in feed(world)[0]}
    assert movements[planted["unknown_warehouse_sku"]["movement_id"]]["sku"] == orphan["sku"]
    r = requests.post(f"{world}/_admin/inject", json={"kinds": ["no_such_kind"]}, timeout=10)
    assert r.status_code == 400 and "negative_on_hand" in r.json()["error"]


def test_faults_apply_to_the_warehouse_prefix(world: str) -> None:
    admin(
        world,
        "POST",
        "faults",
        {"faults": [{"status": 503, "next": 1, "retry_after": "1", "path_prefix": "/warehouse"}]},
    )
    r = get(world, "warehouses")
    assert r.headers["Retry-After"] == "1"
    error(r, 503, "service_unavailable")
    assert get(world, "warehouses").status_code == 200


# --- supplier CSV feeds ---------------------------------------------------------------------


def drop_files(folder, *args: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators",
            "drop-files",
            "--dir",
            str(folder),
            "--seed",
            "7",
            "--products",
            "300",
            *args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_drop_files_writes_a_days_feed_with_the_malformed_rows_it_reports(tmp_path, world: str) -> None:
    summary = drop_files(tmp_path / "landing", "--date", "2026-11-26", "--bad-rows", "7")
    path = tmp_path / "landing" / "suppliers_2026-11-26.csv"
    assert summary["file"] == str(path) and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == HEADER and len(rows) - 1 == summary["rows"]
    bad = {b["line"]: b["kind"] for b in summary["bad_rows"]}
    assert len(bad) == 7 and set(bad.values()) == {
        "bad_number",
        "negative_quantity",
        "unknown_currency",
        "missing_sku",
        "wrong_column_count",
    }
    for line, row in enumerate(rows[1:], start=2):
        if line not in bad:
            assert (
                len(row) == 7 and row[2] and row[4] in {"USD", "EUR", "GBP"} and float(row[3]) > 0 and int(row[6]) >= 0
            )
    assert len(rows[next(x for x, k in bad.items() if k == "wrong_column_count") - 1]) == 6
    assert rows[next(x for x, k in bad.items() if k == "missing_sku") - 1][2] == ""
    skus = {x["sku"] for x in export(world, "stock-levels")[0]}
    assert {row[2] for row in rows[1:] if len(row) == 7 and row[2]} <= skus
    suppliers = {s["id"] for s in ok(world, "suppliers")["data"]}
    assert {row[0] for row in rows[1:]} <= suppliers


def test_drop_files_is_deterministic_and_prices_move_by_day(tmp_path) -> None:
    drop_files(tmp_path / "a", "--date", "2026-11-26")
    drop_files(tmp_path / "b", "--date", "2026-11-26")
    drop_files(tmp_path / "b", "--date", "2026-11-27", "--bad-rows", "0")
    first = (tmp_path / "a" / "suppliers_2026-11-26.csv").read_bytes()
    assert first == (tmp_path / "b" / "suppliers_2026-11-26.csv").read_bytes()
    next_day = (tmp_path / "b" / "suppliers_2026-11-27.csv").read_text().splitlines()
    assert next_day != first.decode().splitlines() and len(next_day) == len(first.decode().splitlines())


def test_drop_files_refuses_a_bad_date(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulators", "drop-files", "--dir", str(tmp_path), "--date", "2026-13-01"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "2026-13-01" in done.stderr and not list(tmp_path.iterdir())
