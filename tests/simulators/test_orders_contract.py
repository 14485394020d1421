"""Contract tests for commerce orders and customers in the commercetools simulator (real HTTP, subprocess)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import requests

from tests.simulators.test_commerce_contract import TS_RE, Api, admin, assert_ct_error, ts_key, variants_of

PROJECT = "beauty-hub"
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
PAYMENT_STATES = ("Pending", "Paid", "Failed", "BalanceDue", "CreditOwed")
SHIPMENT_STATES = ("Pending", "Ready", "Shipped", "Delivered")
CURRENCY_OF = {"US": "USD", "FR": "EUR", "DE": "EUR", "GB": "GBP"}


@pytest.fixture(scope="module")
def api(commerce_sim: str) -> Api:
    return Api(commerce_sim)


@pytest.fixture(scope="module")
def world(commerce_sim: str, api: Api) -> dict:
    admin(commerce_sim, "POST", "reset", {"seed": 7, "products": 300})
    return {
        "orders": api.export("orders", limit=37),
        "customers": api.export("customers", limit=37),
        "products": api.export("product-projections"),
    }


def cents(money: dict) -> int:
    assert money["type"] == "centPrecision" and money["fractionDigits"] == 2
    return money["centAmount"]


def test_sizes_follow_the_catalog_and_match_the_stats(commerce_sim: str, world: dict, api: Api) -> None:
    stats = admin(commerce_sim, "GET", "stats")["commerce"]
    assert stats["orders"] == len(world["orders"]) == 150 == api.page("orders", limit=0)["total"]
    assert stats["customers"] == len(world["customers"]) == 75
    assert stats["order_lines"] == sum(len(o["lineItems"]) for o in world["orders"])
    assert len({o["id"] for o in world["orders"]}) == 150


def test_orders_carry_commercetools_fields(world: dict) -> None:
    skus = {v["sku"]: p["id"] for p in world["products"] for v in variants_of(p)}
    customers = {c["id"]: c for c in world["customers"]}
    numbers = [o["orderNumber"] for o in world["orders"]]
    assert len(set(numbers)) == len(numbers) and all(re.fullmatch(r"BH-\d{7}", n) for n in numbers)
    for order in world["orders"]:
        assert order["orderState"] in ORDER_STATES and order["paymentState"] in PAYMENT_STATES
        assert order["shipmentState"] in SHIPMENT_STATES
        assert TS_RE.match(order["createdAt"]) and ts_key(order["createdAt"]) <= ts_key(order["lastModifiedAt"])
        assert order["version"] >= 1 and "@" in order["customerEmail"]
        if "customerId" in order:
            assert order["customerEmail"] == customers[order["customerId"]]["email"].lower()
        currency = order["totalPrice"]["currencyCode"]
        assert currency == CURRENCY_OF[order["country"]]
        assert order["lineItems"]
        for line in order["lineItems"]:
            assert line["variant"]["sku"] in skus and line["productId"] == skus[line["variant"]["sku"]]
            assert line["quantity"] > 0 and line["price"]["value"]["currencyCode"] == currency
            assert cents(line["totalPrice"]) == cents(line["price"]["value"]) * line["quantity"] > 0
        total = cents(order["totalPrice"])
        assert total == sum(cents(line["totalPrice"]) for line in order["lineItems"])
        taxed = order["taxedPrice"]
        assert cents(taxed["totalGross"]) == total and 0 < cents(taxed["totalNet"]) < total
        assert cents(taxed["totalNet"]) + cents(taxed["totalTax"]) == total
    states = Counter(o["paymentState"] for o in world["orders"])
    assert states["Paid"] > len(world["orders"]) / 2 and states["Pending"] > 0
    assert any("customerId" not in o for o in world["orders"])  # guest checkouts


def test_customers_carry_personal_data_at_the_source(world: dict) -> None:
    emails = [c["email"] for c in world["customers"]]
    assert len({e.lower() for e in emails}) == len(emails)
    assert any(e != e.lower() for e in emails)
    for customer in world["customers"]:
        assert customer["firstName"] and customer["lastName"]
        assert customer["addresses"][0]["country"] in CURRENCY_OF
        assert ts_key(customer["createdAt"]) <= ts_key(customer["lastModifiedAt"])


def test_where_sort_and_get_one(api: Api, world: dict) -> None:
    pending = api.page("orders", where='paymentState = "Pending"', limit=500)["results"]
    assert sorted(o["id"] for o in pending) == sorted(
        o["id"] for o in world["orders"] if o["paymentState"] == "Pending"
    )
    sku = world["orders"][0]["lineItems"][0]["variant"]["sku"]
    holders = api.page("orders", where=f'lineItems(sku = "{sku}")', limit=500)["results"]
    assert world["orders"][0]["id"] in {o["id"] for o in holders}
    assert all(any(li["variant"]["sku"] == sku for li in o["lineItems"]) for o in holders)
    big = api.page("orders", where="totalPrice(centAmount > 20000)", limit=500)["results"]
    assert sorted(o["id"] for o in big) == sorted(
        o["id"] for o in world["orders"] if o["totalPrice"]["centAmount"] > 20000
    )
    newest = api.page("orders", sort="lastModifiedAt desc", limit=5)["results"]
    assert [o["lastModifiedAt"] for o in newest] == sorted(
        (o["lastModifiedAt"] for o in world["orders"]), reverse=True
    )[:5]
    country = world["customers"][0]["addresses"][0]["country"]
    by_country = api.page("customers", where=f'country = "{country}"', limit=500)["results"]
    assert {c["id"] for c in by_country} == {
        c["id"] for c in world["customers"] if c["addresses"][0]["country"] == country
    }
    one = world["orders"][3]
    assert api.page(f"orders/{one['id']}") == one
    assert_ct_error(api.get("orders/no-such-order"), 404, "ResourceNotFound")
    assert_ct_error(api.get("orders", where='colour = "red"'), 400, "InvalidInput")


def test_orders_need_a_token(commerce_sim: str) -> None:
    r = requests.get(f"{commerce_sim}/commerce/{PROJECT}/orders", timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_churn_places_orders_and_moves_others_on(clean_world: str, api: Api, world: dict) -> None:
    before = {o["id"]: o for o in world["orders"]}
    result = admin(clean_world, "POST", "churn", {"orders": 6})
    assert {"products", "inventory", "lastModifiedAt"} <= set(result)
    created, updated = result["orders_created"], result["orders_updated"]
    assert len(set(created)) == len(created) == 6 and len(set(updated)) == len(updated) == 6
    stamp = result["lastModifiedAt"]
    for order_id in created:
        order = api.page(f"orders/{order_id}")
        assert (order["orderState"], order["paymentState"], order["shipmentState"]) == ("Open", "Pending", "Pending")
        assert order["version"] == 1 and order["createdAt"] == order["lastModifiedAt"] == stamp
        assert order_id not in before
    for order_id in updated:
        old, new = before[order_id], api.page(f"orders/{order_id}")
        assert old["orderState"] not in ("Complete", "Cancelled")
        assert new["version"] == old["version"] + 1 and new["lastModifiedAt"] == stamp
        moved = (
            PAYMENT_STATES.index(new["paymentState"]) != PAYMENT_STATES.index(old["paymentState"])
            or SHIPMENT_STATES.index(new["shipmentState"]) > SHIPMENT_STATES.index(old["shipmentState"])
            or new["orderState"] in ("Complete", "Cancelled")
        )
        assert moved, (old, new)
    changed = api.page("orders", where="lastModifiedAt >= :t", **{"var.t": stamp}, limit=500)["results"]
    assert sorted(o["id"] for o in changed) == sorted(created + updated)
    stats = admin(clean_world, "GET", "stats")["commerce"]
    assert stats["orders"] == len(before) + 6


def test_inject_plants_order_kinds_only_when_asked(clean_world: str, api: Api) -> None:
    default = admin(clean_world, "POST", "inject", {})
    assert not set(default) & {"negative_order_total", "orphan_order_line_sku"}
    kinds = ["negative_order_total", "orphan_order_line_sku", "zero_quantity_line", "customer_without_email"]
    planted = admin(clean_world, "POST", "inject", {"kinds": kinds})
    assert set(planted) == set(kinds)
    assert api.page(f"orders/{planted['negative_order_total']['order_id']}")["totalPrice"]["centAmount"] < 0
    orphan = planted["orphan_order_line_sku"]
    lines = api.page(f"orders/{orphan['order_id']}")["lineItems"]
    assert orphan["sku"].startswith("ZZZ-") and orphan["sku"] in [li["variant"]["sku"] for li in lines]
    assert api.page("product-projections", where=f'sku = "{orphan["sku"]}"')["count"] == 0
    zero = planted["zero_quantity_line"]
    assert (
        next(li for li in api.page(f"orders/{zero['order_id']}")["lineItems"] if li["id"] == zero["line_item_id"])[
            "quantity"
        ]
        == 0
    )
    assert "email" not in api.page(f"customers/{planted['customer_without_email']['customer_id']}")


def test_reset_rebuilds_the_same_orders(clean_world: str, api: Api, world: dict) -> None:
    admin(clean_world, "POST", "churn", {"orders": 3})
    admin(clean_world, "POST", "reset", {"seed": 7})
    again = api.export("orders")
    fingerprint = sorted((o["id"], o["orderNumber"], o["totalPrice"]["centAmount"]) for o in world["orders"])
    assert sorted((o["id"], o["orderNumber"], o["totalPrice"]["centAmount"]) for o in again) == fingerprint
    admin(clean_world, "POST", "reset", {"seed": 8})
    assert {o["id"] for o in api.export("orders")}.isdisjoint({o["id"] for o in world["orders"]})
