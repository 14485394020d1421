"""The code location loads, and its assets, checks and jobs match this snapshot."""

import os
import subprocess
import sys

from dagster_project.definitions import defs

ASSET_KEYS = {
    "raw/commerce_product_projections",
    "raw/commerce_inventory_entries",
    "raw/commerce_channels",
    "raw/commerce_categories",
    "core/products",
    "core/product_variants",
    "core/prices",
    "core/inventory_entries",
    "core/channels",
    "core/categories",
}
CHECKS = {
    ("core/products", "products_suite"),
    ("core/product_variants", "product_variants_suite"),
    ("core/prices", "prices_suite"),
    ("core/inventory_entries", "inventory_entries_suite"),
    ("core/channels", "channels_suite"),
    ("core/categories", "categories_suite"),
}


def test_asset_keys_and_groups():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == ASSET_KEYS
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"commerce"}


def test_asset_checks_are_blocking():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == CHECKS
    for check in defs.asset_checks:
        assert all(spec.blocking for spec in check.check_specs)


def test_jobs_and_resources():
    assert {job.name for job in defs.jobs} == {"full_sync_job", "incremental_sync_job"}
    assert set(defs.resources) == {"hub", "commerce", "alert_webhook"}
    assert {sensor.name for sensor in defs.sensors} == {"failure_alerts"}
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
