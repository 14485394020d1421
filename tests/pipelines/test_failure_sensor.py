"""The failure sensor writes ops.alerts and posts to the webhook."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from assets.commerce import commerce_assets, raw_commerce_channels
from pipelines.sensors.failures import build_failure_alert_sensor
from resources.alerts import AlertWebhookResource
from resources.hub import HubResource
from tests.conftest import Simulator, commerce_resource, free_port


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A local webhook that records what it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", received
    server.shutdown()


def test_a_failed_run_is_alerted(simulator: Simulator, hub: HubResource, receiver):
    url, received = receiver
    nowhere = f"http://127.0.0.1:{free_port()}/commerce"
    broken = commerce_resource(simulator, api_url=nowhere, auth_url=nowhere, max_attempts=1)
    sensor = build_failure_alert_sensor(commerce_assets)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_commerce_channels], resources={"commerce": broken, "hub": hub}, instance=instance, raise_on_error=False
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        (failure,) = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failure.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"hub": hub, "alert_webhook": AlertWebhookResource(url=url)},
        ).for_run_failure()
        sensor(context)
        sensor(context)  # evaluated twice, alerted once

    alerts = hub.read_frame("SELECT * FROM ops.alerts")
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert (alert["run_id"], alert["asset_key"], alert["error_class"]) == (
        result.run_id,
        "raw/commerce_channels",
        "ExternalSystemError",
    )
    assert "COMMERCE_AUTH_URL" in alert["message"]
    assert len(received) == 2 and received[0]["alert_id"] == alert["alert_id"]
    assert received[0]["asset_key"] == "raw/commerce_channels"
