"""The code location loads, and its assets, checks and jobs match this snapshot."""

import os
import subprocess
import sys

from dagster_project.definitions import defs

ASSETS_BY_GROUP = {
    "analytics": {
        "core/product_daily_metrics",
        "raw/analytics_report_rows",
    },
    "commerce": {
        "core/categories",
        "core/channels",
        "core/customers",
        "core/inventory_entries",
        "core/order_lines",
        "core/orders",
        "core/prices",
        "core/product_variants",
        "core/products",
        "raw/commerce_categories",
        "raw/commerce_channels",
        "raw/commerce_customers",
        "raw/commerce_inventory_entries",
        "raw/commerce_orders",
        "raw/commerce_product_projections",
    },
    "quality": {
        "quality/report",
    },
    "payments": {
        "core/balance_transactions",
        "core/disputes",
        "core/payments",
        "core/refunds",
        "raw/payments_balance_transactions",
        "raw/payments_charges",
        "raw/payments_disputes",
        "raw/payments_events",
        "raw/payments_payment_intents",
        "raw/payments_refunds",
    },
    "serving": {
        "core/inventory_positions",
        "quality/inventory_conflicts",
        "serving/v1_demand_forecast",
        "serving/v1_inventory_availability",
        "serving/v1_payment_reconciliation",
        "serving/v1_product_experience",
        "serving/v1_replenishment_suggestions",
        "serving/v1_sourcing_options",
    },
    "warehouse": {
        "core/purchase_order_lines",
        "core/purchase_orders",
        "core/stock_levels",
        "core/stock_movements",
        "core/supplier_offers",
        "core/suppliers",
        "core/warehouses",
        "raw/warehouse_purchase_orders",
        "raw/warehouse_stock_levels",
        "raw/warehouse_stock_movements",
        "raw/warehouse_suppliers",
        "raw/warehouse_warehouses",
    },
}
CHECKS = {
    ("core/balance_transactions", "balance_transactions_suite"),
    ("core/categories", "categories_suite"),
    ("core/channels", "channels_suite"),
    ("core/customers", "customers_suite"),
    ("core/disputes", "disputes_suite"),
    ("core/inventory_entries", "inventory_entries_suite"),
    ("core/inventory_positions", "inventory_positions_suite"),
    ("core/order_lines", "order_lines_suite"),
    ("core/orders", "orders_suite"),
    ("core/payments", "payments_suite"),
    ("core/prices", "prices_suite"),
    ("core/product_daily_metrics", "product_daily_metrics_suite"),
    ("core/product_variants", "product_variants_suite"),
    ("core/products", "products_suite"),
    ("core/purchase_order_lines", "purchase_order_lines_suite"),
    ("core/purchase_orders", "purchase_orders_suite"),
    ("core/refunds", "refunds_suite"),
    ("core/stock_levels", "stock_levels_suite"),
    ("core/stock_movements", "stock_movements_suite"),
    ("core/supplier_offers", "supplier_offers_suite"),
    ("core/suppliers", "suppliers_suite"),
    ("core/warehouses", "warehouses_suite"),
    ("quality/inventory_conflicts", "inventory_conflicts_suite"),
    ("serving/v1_demand_forecast", "demand_forecast_suite"),
    ("serving/v1_inventory_availability", "inventory_availability_suite"),
    ("serving/v1_payment_reconciliation", "payment_reconciliation_suite"),
    ("serving/v1_product_experience", "product_experience_suite"),
    ("serving/v1_replenishment_suggestions", "replenishment_suggestions_suite"),
    ("serving/v1_sourcing_options", "sourcing_options_suite"),
    ("serving/v1_sourcing_options", "sourcing_ranks_dense"),
}
# Conformed core tables reconcile their batch counts; every raw table has a schema-drift check.
CONFORMED_TABLES = {
    "core/balance_transactions", "core/categories", "core/channels", "core/customers", "core/disputes",
    "core/inventory_entries", "core/order_lines", "core/orders", "core/payments", "core/prices",
    "core/product_variants", "core/products", "core/purchase_order_lines", "core/purchase_orders", "core/refunds",
    "core/stock_levels", "core/stock_movements", "core/suppliers", "core/warehouses",
}  # fmt: skip
CHECKS |= {(table, "counts_reconcile") for table in CONFORMED_TABLES}
# ... and those with row rules (all but products and categories) hold their bad rows under the threshold.
CHECKS |= {(t, "bad_rows_within_threshold") for t in CONFORMED_TABLES - {"core/products", "core/categories"}}
CHECKS |= {(key, "schema_drift") for keys in ASSETS_BY_GROUP.values() for key in keys if key.startswith("raw/")}


def test_asset_keys_and_groups():
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert groups == ASSETS_BY_GROUP


def test_asset_checks_are_blocking():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == CHECKS
    for check in defs.asset_checks:
        assert all(spec.blocking for spec in check.check_specs)


def test_jobs_and_resources():
    assert {job.name for job in defs.jobs} == {
        "full_sync_job",
        "incremental_sync_job",
        "analytics_daily_job",
        "serving_job",
        "supplier_file_job",
        "quality_report_job",
        "commerce_changes_job",
        "replay_inventory_job",
        "payment_events_apply_job",
        "warehouse_movements_job",
        "quarantine_release_job",
    }
    assert set(defs.resources) == {
        "hub",
        "commerce",
        "payments",
        "warehouse",
        "analytics",
        "pii",
        "rules",
        "alert_webhook",
        "commerce_queue",
    }
    assert {sensor.name for sensor in defs.sensors} == {
        "failure_alerts",
        "supplier_file_sensor",
        "quality_report_after_success",
        "quality_report_after_failure",
        "commerce_messages_sensor",
        "commerce_queue_sensor",
        "payment_events_sensor",
        "warehouse_movements_sensor",
    }
    assert {schedule.name for schedule in defs.schedules} == {
        "nightly_full_sync",
        "incremental_sync_every_15_minutes",
        "analytics_daily_job_schedule",
    }
    assert defs.resolve_job_def("full_sync_job")


def test_the_workspace_loads_with_the_dagster_cli(tmp_path):
    listed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert listed.returncode == 0, listed.stderr[-2000:]


def test_every_hub_step_takes_the_hub_pool():
    steps = [*defs.assets, *defs.asset_checks]
    assert {step.node_def.name: step.node_def.pool for step in steps} == {step.node_def.name: "hub" for step in steps}
