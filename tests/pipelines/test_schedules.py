"""Schedules evaluated at given times, and the incremental job run against the simulator."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from dagster_project.definitions import defs
from pipelines.jobs import full_sync_job, incremental_sync_job
from pipelines.schedules import incremental_sync_every_15_minutes, nightly_full_sync
from resources.hub import HubResource
from tests.conftest import Simulator, every_resource


def requests_at(schedule: dg.ScheduleDefinition, when: datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(scheduled_execution_time=when)
    return list(schedule.evaluate_tick(context).run_requests or [])


def test_the_nightly_full_sync_runs_at_two_in_the_sync_timezone():
    assert (nightly_full_sync.cron_schedule, nightly_full_sync.execution_timezone) == ("0 2 * * *", "UTC")
    (request,) = requests_at(nightly_full_sync, datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert request.tags["sync"] == "full"
    assert nightly_full_sync.job_name == "full_sync_job"


def test_the_incremental_sync_runs_every_quarter_hour():
    assert incremental_sync_every_15_minutes.cron_schedule == "*/15 * * * *"
    (request,) = requests_at(incremental_sync_every_15_minutes, datetime(2026, 11, 27, 10, 45, tzinfo=UTC))
    assert request.tags["sync"] == "incremental"
    assert incremental_sync_every_15_minutes.job_name == "incremental_sync_job"


@pytest.mark.slow
def test_the_incremental_job_lands_only_what_changed(simulator: Simulator, each_hub: HubResource, tmp_path):
    """The whole graph but analytics (sources, then serving) in full, then incremental, on each backend."""
    hub = each_hub
    local = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[full_sync_job, incremental_sync_job],
        resources=every_resource(simulator, hub, tmp_path),
    )
    with dg.instance_for_test() as instance:
        assert local.resolve_job_def("full_sync_job").execute_in_process(instance=instance).success
        churned = simulator.admin("POST", "churn", products=7, inventory=11, orders=5)
        result = local.resolve_job_def("incremental_sync_job").execute_in_process(instance=instance)
    assert result.success
    reported = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    changed = {key: metadata["rows_changed"].value for key, metadata in reported.items()}
    assert changed["raw/commerce_product_projections"] == len(churned["products"]) == 7
    assert changed["raw/commerce_inventory_entries"] == len(churned["inventory"]) == 11
    assert changed["raw/commerce_orders"] == len(churned["orders_created"]) + len(churned["orders_updated"])
    assert changed["raw/commerce_channels"] == changed["raw/commerce_categories"] == 0
    modes = {key: metadata["mode"].value for key, metadata in reported.items() if "mode" in metadata}
    assert set(modes.values()) == {"incremental"}
    assert {name for name in modes} >= {"raw/commerce_product_projections", "raw/payments_charges"}
    serving = {key for key in reported if key.startswith("serving/")}
    assert serving == {
        "serving/v1_inventory_availability",
        "serving/v1_sourcing_options",
        "serving/v1_product_experience",
        "serving/v1_payment_reconciliation",
        "serving/v1_demand_forecast",
        "serving/v1_replenishment_suggestions",
    }
    assert all(e.passed for e in result.get_asset_check_evaluations())
