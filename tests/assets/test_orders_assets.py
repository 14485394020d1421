"""Materialize commerce orders and customers into a temp hub from the simulator over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json

import dagster as dg

from assets.commerce import commerce_assets
from assets.orders import ORDERS_CORE_TABLES, core_customers, orders_assets, raw_commerce_customers
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from quality.orders import ORDERS_SUITES
from resources.commerce import CommerceToolsResource
from resources.hub import HUB_POOL, HubResource
from resources.pii import PiiHashResource
from tests.conftest import Simulator

SALT = "orders-test-salt-5c1e9a"
CHECKS = build_suite_checks([*COMMERCE_SUITES, *ORDERS_SUITES], pool=HUB_POOL)
RAW_ASSETS = [a for a in [*commerce_assets, *orders_assets] if all(k.path[0] == "raw" for k in a.keys)]


def run(hub: HubResource, commerce: CommerceToolsResource, *, mode: str = "full", salt: str = SALT, **kwargs):
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_ASSETS}}
    return dg.materialize(
        [*commerce_assets, *orders_assets, *CHECKS],
        resources={"hub": hub, "commerce": commerce, "pii": PiiHashResource(salt=salt)},
        run_config=config,
        **kwargs,
    )


def count(hub: HubResource, table: str) -> int:
    return int(hub.scalar(f"SELECT count(*) FROM {table}"))


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """check name -> {failed expectation label: its metadata} for every failed check."""
    return {
        e.check_name: {k.removeprefix("failed: "): v.value for k, v in e.metadata.items() if k.startswith("failed: ")}
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }


def test_orders_and_customers_match_the_simulator(simulator: Simulator, each_hub: HubResource, commerce):
    result = run(each_hub, commerce)
    assert result.success
    stats = simulator.stats()["commerce"]
    assert stats["orders"] > 0 and stats["customers"] > 0
    assert {
        "core.orders": count(each_hub, "core.orders"),
        "core.order_lines": count(each_hub, "core.order_lines"),
        "core.customers": count(each_hub, "core.customers"),
        "raw.commerce_orders": count(each_hub, "raw.commerce_orders"),
        "raw.commerce_customers": count(each_hub, "raw.commerce_customers"),
    } == {
        "core.orders": stats["orders"],
        "core.order_lines": stats["order_lines"],
        "core.customers": stats["customers"],
        "raw.commerce_orders": stats["orders"],
        "raw.commerce_customers": stats["customers"],
    }
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {s.name for s in ORDERS_SUITES} <= set(evaluations) and all(evaluations.values())
    # totals and lines agree, and every line sells a catalog SKU
    assert (
        each_hub.scalar(
            """SELECT count(*) FROM core.orders o JOIN (SELECT order_id, sum(total_cent_amount) AS total, count(*) AS n
           FROM core.order_lines GROUP BY order_id) l USING (order_id)
           WHERE o.total_cent_amount <> l.total OR o.line_count <> l.n"""
        )
        == 0
    )
    assert (
        each_hub.scalar(
            "SELECT count(*) FROM core.order_lines WHERE sku NOT IN (SELECT sku FROM core.product_variants)"
        )
        == 0
    )


def test_core_keeps_only_a_salted_hash_of_personal_data(hub: HubResource, commerce):
    run(hub, commerce)
    customers = hub.read_frame("SELECT * FROM core.customers")
    assert set(customers.columns) >= {"customer_id", "email_hash", "country"}
    assert not {"email", "first_name", "last_name", "firstName", "lastName"} & set(customers.columns)
    raw = hub.read_frame("SELECT id, document FROM raw.commerce_customers")
    emails = {i: json.loads(d)["email"] for i, d in zip(raw["id"], raw["document"], strict=True)}
    expected = {
        i: hmac.new(SALT.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()
        for i, email in emails.items()
    }
    assert dict(zip(customers["customer_id"], customers["email_hash"], strict=True)) == expected
    assert any(email != email.lower() for email in emails.values())  # mixed case at the source
    core_text = " ".join(hub.read_frame(f"SELECT * FROM {t.name}").to_csv() for t in ORDERS_CORE_TABLES).lower()
    assert "@example.com" not in core_text and SALT not in core_text
    # the hash does not depend on the email's case, and guest orders carry one too
    orders = hub.read_frame("SELECT customer_id, customer_email_hash FROM core.orders WHERE customer_id IS NOT NULL")
    joined = orders.merge(customers, on="customer_id")
    assert len(joined) == len(orders) and (joined["customer_email_hash"] == joined["email_hash"]).all()


def test_an_incremental_run_lands_the_churned_orders(simulator: Simulator, hub: HubResource, commerce):
    run(hub, commerce)
    churned = simulator.admin("POST", "churn", orders=5)
    assert len(churned["orders_created"]) == 5 and len(churned["orders_updated"]) == 5
    result = run(hub, commerce, mode="incremental")
    assert result.success
    reported = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert reported["raw/commerce_orders"]["rows_changed"].value == 10
    assert reported["core/orders"]["rows_changed"].value == 10
    assert count(hub, "core.orders") == simulator.stats()["commerce"]["orders"]
    for order_id in churned["orders_updated"] + churned["orders_created"]:
        api = commerce.get("orders", order_id)
        row = hub.read_frame(
            "SELECT version, order_state, payment_state, shipment_state, total_cent_amount FROM core.orders "
            "WHERE order_id = ?",
            [order_id],
        ).iloc[0]
        assert tuple(row) == (
            api["version"],
            api["orderState"],
            api["paymentState"],
            api["shipmentState"],
            api["totalPrice"]["centAmount"],
        )


def test_planted_order_records_are_quarantined_or_fail_the_named_checks(
    simulator: Simulator, hub: HubResource, commerce
):
    kinds = ["negative_order_total", "orphan_order_line_sku", "zero_quantity_line", "customer_without_email"]
    planted = simulator.admin("POST", "inject", kinds=kinds)
    result = run(hub, commerce, raise_on_error=False)
    # A row that breaks a row rule is quarantined whole with the rule; the rest of its batch loads.
    quarantine = hub.read_frame(
        "SELECT dataset, expectation, record_key FROM quality.quarantine WHERE expectation IS NOT NULL"
    )
    held = {(r.dataset, r.expectation): json.loads(r.record_key) for r in quarantine.itertuples()}
    negative, zero = planted["negative_order_total"], planted["zero_quantity_line"]
    assert held == {
        ("core.orders", NEGATIVE_TOTALS): {"order_id": negative["order_id"]},
        ("core.order_lines", "expect_column_values_to_be_between(quantity, min_value=1)"): {
            "order_id": zero["order_id"],
            "line_item_id": zero["line_item_id"],
            "sku": zero["sku"],
        },
        ("core.customers", "expect_column_values_to_not_be_null(email_hash)"): {
            "customer_id": planted["customer_without_email"]["customer_id"]
        },
    }
    assert not hub.scalar("SELECT count(*) FROM core.orders WHERE order_id = ?", [negative["order_id"]])
    assert hub.scalar("SELECT count(*) FROM core.order_lines WHERE order_id = ?", [negative["order_id"]])
    # An unknown SKU is a reference rule over the whole table: it still fails the check and names the line.
    failures = failed_checks(result)
    assert set(failures) == {"order_lines_suite"}
    orphan = planted["orphan_order_line_sku"]
    assert failures["order_lines_suite"]["expect_column_values_to_be_in_set(sku)"]["failing_keys"] == [
        {"order_id": orphan["order_id"], "line_item_id": orphan["line_item_id"], "sku": orphan["sku"]}
    ]
    reconciled = [e for e in result.get_asset_check_evaluations() if e.check_name == "counts_reconcile"]
    assert len(reconciled) == len(ORDERS_CORE_TABLES) + 6 and all(e.passed for e in reconciled)


# negative_order_total makes the total and both taxed amounts negative: one row failing three rules.
NEGATIVE_TOTALS = "; ".join(
    f"expect_column_values_to_be_between({column}, min_value=0)"
    for column in ("total_cent_amount", "total_net_cent_amount", "total_gross_cent_amount")
)


def test_a_short_salt_is_refused_naming_the_setting(hub: HubResource, commerce):
    result = dg.materialize(
        [raw_commerce_customers, core_customers],
        resources={"hub": hub, "commerce": commerce, "pii": PiiHashResource(salt="s3cr3t")},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "PII_HASH_SALT" in str(failure.step_failure_data.error)
    assert "s3cr3t" not in " ".join(str(e) for e in result.all_events)


def test_core_tables_keep_their_keys_not_null_and_unique_without_an_index(hub: HubResource, commerce):
    run(hub, commerce)
    for spec in ORDERS_CORE_TABLES:
        keys = ", ".join(spec.primary_key)
        repeated = f"SELECT count(*) FROM (SELECT {keys} FROM {spec.name} GROUP BY {keys} HAVING count(*) > 1) r"
        assert hub.scalar(repeated) == 0, spec.name
    not_null = hub.read_frame(
        "SELECT schema_name || '.' || table_name AS name, unnest(constraint_column_names) AS key "
        "FROM duckdb_constraints() WHERE constraint_type = 'NOT NULL'"
    )
    for spec in ORDERS_CORE_TABLES:
        assert set(spec.primary_key) <= set(not_null.loc[not_null["name"] == spec.name, "key"]), spec.name
    indexed = hub.read_frame(
        "SELECT schema_name || '.' || table_name AS name FROM duckdb_constraints()"
        " WHERE constraint_type = 'PRIMARY KEY'"
    )
    assert not {t.name for t in ORDERS_CORE_TABLES} & set(indexed["name"])  # bulk-loaded: no key index
