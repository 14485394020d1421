"""Every core asset carries a freshness policy; raw, quality and serving assets carry none."""

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg

from dagster_project.definitions import all_assets
from dagster_project.definitions import defs as project
from pipelines.freshness import with_freshness

PROJECT_YAML = Path(__file__).parents[2] / "dagster_project" / "dagster.yaml"


def test_core_assets_carry_a_freshness_policy_and_no_other_layer_does():
    defs = dg.Definitions(assets=with_freshness(all_assets), resources=project.resources)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert (
        keys
        == dg.Definitions(assets=all_assets, resources=project.resources).resolve_asset_graph().get_all_asset_keys()
    )
    layers = {key.path[0] for key in keys}
    assert {"core", "raw", "serving"} <= layers
    policies = {key.to_user_string(): graph.get(key).freshness_policy for key in keys}
    core = {k: p for k, p in policies.items() if k.startswith("core/")}
    assert core and all(isinstance(p, dg.FreshnessPolicy) for p in core.values()), core
    assert {k: p for k, p in policies.items() if not k.startswith("core/") and p is not None} == {}
    products, daily = core["core/products"], core["core/product_daily_metrics"]
    assert (products.fail_window.to_timedelta(), products.warn_window.to_timedelta()) == (
        timedelta(hours=26),
        timedelta(hours=2),
    )
    assert daily.fail_window.to_timedelta() == timedelta(hours=48)


def test_the_embedded_instance_evaluates_freshness(tmp_path: Path):
    shutil.copy(PROJECT_YAML, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.freshness_enabled
        assert "FRESHNESS_DAEMON" in {t.upper() for t in instance.get_required_daemon_types()}
