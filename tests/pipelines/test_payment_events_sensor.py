"""The payment events sensor: Stripe events into ops.change_events, then a run that makes the hub match the gateway."""

from pathlib import Path

import dagster as dg
import requests

from assets.payments import payments_assets
from pipelines.sensors.payment_events import payment_events_apply_job, payment_events_sensor
from resources.hub import HubResource
from tests.conftest import Simulator, every_resource


def tick(instance: dg.DagsterInstance, resources: dict) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources=resources)
    return payment_events_sensor(context)


def execute(request: dg.RunRequest, instance: dg.DagsterInstance, resources: dict) -> dg.ExecuteInProcessResult:
    return payment_events_apply_job.execute_in_process(
        run_config=request.run_config, resources=resources, instance=instance, tags=request.tags
    )


def stored_events(hub: HubResource) -> list[str]:
    return hub.read_frame("SELECT event_id FROM ops.change_events WHERE source = 'payments'")["event_id"].tolist()


def gateway(simulator: Simulator, object_name: str) -> dict[str, dict]:
    """Every object of a Stripe list, by id, straight from the simulator."""
    objects, params = {}, {"limit": 100}
    while True:
        body = requests.get(
            f"{simulator.url}/payments/v1/{object_name}",
            params=params,
            headers={"Authorization": "Bearer sk_test_hub"},
            timeout=30,
        ).json()
        objects.update((o["id"], o) for o in body["data"])
        if not body["has_more"]:
            return objects
        params["starting_after"] = body["data"][-1]["id"]


def assert_hub_matches_gateway(hub: HubResource, simulator: Simulator) -> None:
    charges = gateway(simulator, "charges")
    payments = hub.read_frame("SELECT payment_id, amount_refunded, refunded, disputed FROM core.payments")
    assert {row.payment_id: (row.amount_refunded, row.refunded, row.disputed) for row in payments.itertuples()} == {
        c["id"]: (c["amount_refunded"], c["refunded"], c["disputed"]) for c in charges.values()
    }
    refunds = hub.read_frame("SELECT refund_id, payment_id, amount, status FROM core.refunds")
    assert {row.refund_id: (row.payment_id, row.amount, row.status) for row in refunds.itertuples()} == {
        r["id"]: (r["charge"], r["amount"], r["status"]) for r in gateway(simulator, "refunds").values()
    }
    assert set(
        hub.read_frame("SELECT balance_transaction_id FROM core.balance_transactions")["balance_transaction_id"]
    ) == set(gateway(simulator, "balance_transactions"))


def test_first_tick_churn_and_lookback(simulator: Simulator, hub: HubResource, tmp_path: Path):
    resources = every_resource(simulator, hub, tmp_path)
    assert dg.materialize(payments_assets, resources=resources).success  # the full sync the sensor follows

    with dg.instance_for_test() as instance:
        # The first tick reads from the synced events' watermark minus the lookback: events in that window
        # are already landed; storing and applying them again changes nothing.
        first = tick(instance, resources)
        if isinstance(first, dg.RunRequest):
            assert execute(first, instance, resources).success
        assert_hub_matches_gateway(hub, simulator)

        quiet = tick(instance, resources)
        assert isinstance(quiet, dg.SkipReason), quiet
        before = stored_events(hub)

        churned = simulator.admin("POST", "churn", payments=4, seed=11)["payments"]
        request = tick(instance, resources)
        assert isinstance(request, dg.RunRequest)
        stored = stored_events(hub)
        assert set(churned["events_created"]) <= set(stored)
        assert len(stored) == len(set(stored)) == len(set(before) | set(churned["events_created"]))
        upto = request.run_config["ops"]["apply_payment_events"]["config"]["upto_batch_id"]
        assert request.run_key.endswith(f"-{upto}")

        # The lookback reads the churned events again: nothing new is stored and the same run is asked for.
        again = tick(instance, resources)
        assert isinstance(again, dg.RunRequest) and again.run_key == request.run_key
        assert sorted(stored_events(hub)) == sorted(stored)

        # While a run of the job waits to start, no other is queued behind it: it applies all stored by then.
        waiting = instance.create_run_for_job(
            payment_events_apply_job, run_config=request.run_config, status=dg.DagsterRunStatus.NOT_STARTED
        )
        assert waiting.run_id in tick(instance, resources).skip_message
        instance.delete_run(waiting.run_id)

        result = execute(request, instance, resources)
        assert result.success
        assert_hub_matches_gateway(hub, simulator)
        landed = {m.asset_key.to_user_string() for m in result.asset_materializations_for_node("apply_payment_events")}
        assert {"raw/payments_charges", "raw/payments_refunds", "core/payments", "core/refunds"} <= landed
        assert isinstance(tick(instance, resources), dg.SkipReason)


def test_without_a_sync_reads_the_whole_event_window(simulator: Simulator, hub: HubResource, tmp_path: Path):
    resources = every_resource(simulator, hub, tmp_path)
    with dg.instance_for_test() as instance:
        request = tick(instance, resources)
        assert isinstance(request, dg.RunRequest)
        listable = simulator.stats()["payments"]["events_listable"]
        assert len(stored_events(hub)) == listable
        assert execute(request, instance, resources).success
        # Every charge an event in the window names is in the hub, as the gateway has it now.
        charges = gateway(simulator, "charges")
        hub_charges = hub.read_frame("SELECT payment_id, amount_refunded FROM core.payments")
        assert len(hub_charges) > 0
        for row in hub_charges.itertuples():
            assert charges[row.payment_id]["amount_refunded"] == row.amount_refunded
        # Disputes arrive only as charge.dispute.* events here: each lands, and marks its charge disputed.
        named = hub.read_frame(
            "SELECT DISTINCT resource_id FROM ops.change_events WHERE event_type LIKE 'charge.dispute.%'"
        )["resource_id"]
        disputes = gateway(simulator, "disputes")
        landed = hub.read_frame("SELECT dispute_id, payment_id, status FROM core.disputes")
        assert len(named) > 0
        assert {r.dispute_id: (r.payment_id, r.status) for r in landed.itertuples()} == {
            d: (disputes[d]["charge"], disputes[d]["status"]) for d in named
        }
        disputed = hub.read_frame("SELECT payment_id FROM core.payments WHERE disputed")["payment_id"]
        assert set(landed["payment_id"]) <= set(disputed)
