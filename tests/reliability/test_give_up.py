"""Give up cleanly: when retries run out, the run fails naming system, endpoint, status and attempts,
the hub is unchanged and an alert is written by the failure sensor."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.commerce import commerce_assets
from assets.payments import payments_assets
from assets.warehouse import warehouse_assets
from pipelines.sensors.failures import build_failure_alert_sensor
from resources.alerts import AlertWebhookResource
from resources.hub import HubResource
from tests.conftest import Simulator
from tests.reliability.harness import SYSTEM_ASSETS, faults, hub_state, sync

SENSOR = build_failure_alert_sensor([*commerce_assets, *payments_assets, *warehouse_assets])

# name -> (rule, system, words the error must carry)
CASES = {
    "503 for ever": (
        {"status": 503, "every": 1},
        "commerce",
        ["commerce:", "GET /beauty-hub/", "HTTP 503", "after 3 attempt(s)", "COMMERCE_API_URL"],
    ),
    "429 for ever (HTTP-date)": (
        {"status": 429, "every": 1, "retry_after": "0", "retry_after_form": "http-date"},
        "payments",
        ["payments:", "GET /v1/", "HTTP 429", "after 3 attempt(s)", "PAYMENTS_API_URL"],
    ),
    "connection reset for ever": (
        {"kind": "reset", "every": 1},
        "warehouse",
        ["warehouse:", "GET /v1/", "no response", "after 3 attempt(s)"],
    ),
    "payments key expires": (
        {"kind": "expire_token", "every": 1},
        "payments",
        ["payments:", "GET /v1/", "HTTP 401", "expired", "PAYMENTS_API_KEY"],
    ),
    "empty page claiming more for ever": (
        {"kind": "empty_page", "every": 1},
        "payments",
        ["payments:", "GET /v1/", "stayed empty", "after 3 attempt(s)", "PAYMENTS_API_URL"],
    ),
    "empty page with a total for ever": (
        {"kind": "empty_page", "every": 1},
        "commerce",
        ["commerce:", "GET /beauty-hub/", "stayed empty", "after 3 attempt(s)"],
    ),
}


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return messages


@pytest.mark.parametrize("case", list(CASES))
def test_retries_exhausted_fail_the_run_cleanly(case: str, sim: Simulator, hub: HubResource, matrix):
    rule, system, words = CASES[case]
    sync(sim, hub)
    sim.admin("POST", "churn", products=5, inventory=5, payments=5, stock_movements=5, seed=3)
    before = hub_state(hub)
    faults(sim, rule, [system])
    with dg.instance_for_test() as instance:
        assets = SYSTEM_ASSETS[system]  # the other systems' steps would commit: they have nothing to do with it
        result = sync(
            sim, hub, mode="incremental", assets=assets, raise_on_error=False, instance=instance, max_attempts=3
        )
        assert not result.success
        messages = failure_messages(result)
        assert any(all(w in m for w in words) for m in messages), messages
        assert hub_state(hub) == before  # every table and ops.sync_state as they were
        run = instance.get_run_by_id(result.run_id)
        (failure,) = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name=SENSOR.name,
            dagster_event=failure.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"hub": hub, "alert_webhook": AlertWebhookResource()},
        ).for_run_failure()
        SENSOR(context)
    alerts = hub.read_frame("SELECT * FROM ops.alerts")  # one per failed step
    assert len(alerts) >= 1 and set(alerts["run_id"]) == {result.run_id}
    assert set(alerts["error_class"]) == {"ExternalSystemError"}
    assert any(all(w in message for w in words) for message in alerts["message"])
    matrix.proved(case, "give-up", tables=len(before))
