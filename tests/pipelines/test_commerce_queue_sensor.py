"""The commerce subscription through a real RabbitMQ queue: the simulator publishes, the sensor drains and acks."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import orjson
import pika
import pytest

from assets.commerce import INVENTORY_ENTRIES, PRODUCTS, commerce_assets
from dagster_project.definitions import defs
from pipelines.jobs import COMMERCE_CHANGES_JOBS, commerce_changes_job, commerce_product_changes_job
from pipelines.sensors.commerce_messages import apply_run_request
from pipelines.sensors.commerce_queue import commerce_queue_sensor
from resources.hub import HubResource
from resources.queue import Batch, CommerceQueueResource, QueueUnavailableError
from tests.conftest import AmqpQueue, Simulator, every_resource


class CrashBeforeAck(CommerceQueueResource):
    """The sensor's process dies after the events committed and before the ack reached the broker."""

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        with super().batch() as batch:
            batch.ack = lambda: _crash(batch)
            yield batch


def _crash(batch: Batch) -> None:
    batch._channel.connection.close()  # unacked deliveries go back to the queue
    raise ConnectionResetError("crashed between the write and the ack")


@pytest.fixture
def subscribed(simulator: Simulator, amqp_queue: AmqpQueue) -> Iterator[AmqpQueue]:
    """The simulator publishing every commerce message to the test's own queue."""
    reply = simulator.admin("POST", "subscription", url=amqp_queue.url, queue=amqp_queue.name)
    assert reply["queue"] == amqp_queue.name and "guest:guest" not in reply["url"]
    yield amqp_queue
    simulator.admin("DELETE", "subscription")


def waiting(queue: AmqpQueue) -> int:
    channel = queue.channel()
    try:
        return channel.queue_declare(queue.name, durable=True, passive=True).method.message_count
    finally:
        channel.connection.close()


def tick(instance: dg.DagsterInstance, hub: HubResource, queue: CommerceQueueResource):
    return commerce_queue_sensor(
        dg.build_sensor_context(instance=instance, resources={"hub": hub, "commerce_queue": queue})
    )


def stored(hub: HubResource) -> list[str]:
    return hub.read_frame("SELECT event_id FROM ops.change_events WHERE source = 'commerce'")["event_id"].tolist()


def live_versions(hub: HubResource, table: str, key: str) -> dict[str, int]:
    frame = hub.read_frame(f"SELECT {key}, version FROM {table} WHERE deleted_at IS NULL")
    return dict(zip(frame[key], frame["version"].astype(int), strict=True))


def assert_hub_matches_simulator(hub: HubResource, resources: dict) -> None:
    commerce = resources["commerce"]
    for table, key, endpoint in (
        (PRODUCTS.name, "product_id", "product-projections"),
        (INVENTORY_ENTRIES.name, "inventory_entry_id", "inventory"),
    ):
        source = {r["id"]: r["version"] for page in commerce.export_pages(endpoint) for r in page}
        assert live_versions(hub, table, key) == source, table


def reverse_the_queue(queue: AmqpQueue) -> list[dict]:
    """Take every waiting message and publish them again newest first; returns them as published."""
    channel = queue.channel()
    deliveries = [channel.basic_get(queue.name) for _ in range(waiting(queue))]
    for _method, properties, body in reversed(deliveries):
        channel.basic_publish("", queue.name, body, properties)
    channel.basic_ack(deliveries[-1][0].delivery_tag, multiple=True)
    channel.connection.close()
    return [orjson.loads(body) for _method, _properties, body in reversed(deliveries)]


def test_end_to_end_out_of_order_and_a_crash_before_the_ack(
    simulator: Simulator, subscribed: AmqpQueue, hub: HubResource, tmp_path: Path
):
    resources = every_resource(simulator, hub, tmp_path)
    queue = CommerceQueueResource(url=subscribed.url, queue=subscribed.name, idle_seconds=0.2)
    assert dg.materialize(commerce_assets, resources=resources).success  # the full sync

    with dg.instance_for_test() as instance:
        assert isinstance(tick(instance, hub, queue), dg.SkipReason)  # nothing published yet

        first = simulator.admin("POST", "churn", products=10, inventory=30, deleted_inventory=2, seed=3)
        simulator.admin("POST", "churn", products=10, inventory=30, seed=3)
        # Delivered newest first: a resource's later change (higher sequenceNumber) comes before its earlier one.
        messages = reverse_the_queue(subscribed)
        published = len(messages)
        assert published == 10 + 30 + 2 + 10 + 30
        sequences = [(m["resource"]["id"], m["sequenceNumber"]) for m in messages]
        assert any(later == (rid, n + 1) for rid, n in sequences for later in sequences[: sequences.index((rid, n))])

        # The events commit, then the sensor dies before its ack: every message comes back.
        crashing = CrashBeforeAck(url=subscribed.url, queue=subscribed.name, idle_seconds=0.2)
        with pytest.raises(ConnectionResetError):
            tick(instance, hub, crashing)
        assert len(stored(hub)) == published
        assert waiting(subscribed) == published

        request = tick(instance, hub, queue)  # the redelivery: nothing stored twice, the run still asked for
        assert len(stored(hub)) == len(set(stored(hub))) == published
        assert waiting(subscribed) == 0
        batch = int(hub.scalar("SELECT max(_batch_id) FROM ops.change_events"))
        assert request == apply_run_request(batch)
        transports = hub.read_frame("SELECT DISTINCT transport FROM ops.change_events")["transport"].tolist()
        assert transports == ["amqp"]

        local = dg.Definitions(assets=defs.assets, jobs=[commerce_changes_job], resources=resources)
        apply = local.resolve_job_def(commerce_changes_job.name)
        tags = {**request.tags, "dagster/run_key": request.run_key}  # as the daemon launches it
        assert apply.execute_in_process(instance=instance, run_config=request.run_config, tags=tags).success
        assert_hub_matches_simulator(hub, resources)
        deleted = hub.read_frame("SELECT inventory_entry_id FROM core.inventory_entries WHERE deleted_at IS NOT NULL")
        assert set(deleted["inventory_entry_id"]) == set(first["deleted_inventory"])
        assert isinstance(tick(instance, hub, queue), dg.SkipReason)


def test_product_messages_alone_run_the_product_changes_job(
    simulator: Simulator, subscribed: AmqpQueue, hub: HubResource, tmp_path: Path
):
    resources = every_resource(simulator, hub, tmp_path)
    queue = CommerceQueueResource(url=subscribed.url, queue=subscribed.name, idle_seconds=0.2)
    local = dg.Definitions(assets=defs.assets, jobs=list(COMMERCE_CHANGES_JOBS), resources=resources)
    with dg.instance_for_test() as instance:
        assert dg.materialize(commerce_assets, resources=resources, instance=instance).success  # the full sync
        simulator.admin("POST", "churn", products=4, seed=3)
        request = tick(instance, hub, queue)
        assert request.job_name == commerce_product_changes_job.name and request.run_key.endswith(":product")
        tags = {**request.tags, "dagster/run_key": request.run_key}  # as the daemon launches it
        result = local.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, run_config=request.run_config, tags=tags
        )
        assert result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert steps == {"raw__commerce_product_projections", "core_catalog", "serving__v1_product_experience"}
        assert_hub_matches_simulator(hub, resources)
        # Applied: the next tick asks for nothing, though the inventory cursor never moved.
        assert isinstance(tick(instance, hub, queue), dg.SkipReason)


def test_a_message_that_is_not_a_commerce_message_is_quarantined(
    simulator: Simulator, amqp_queue: AmqpQueue, hub: HubResource
):
    channel = amqp_queue.channel()
    channel.queue_declare(amqp_queue.name, durable=True)
    channel.basic_publish("", amqp_queue.name, b"{not json", pika.BasicProperties(delivery_mode=2))
    channel.basic_publish("", amqp_queue.name, b'{"id": "m-1"}', pika.BasicProperties(delivery_mode=2))
    channel.connection.close()
    queue = CommerceQueueResource(url=amqp_queue.url, queue=amqp_queue.name, idle_seconds=0.2)
    with dg.instance_for_test() as instance:
        assert isinstance(tick(instance, hub, queue), dg.SkipReason)
    reasons = hub.read_frame("SELECT reason FROM quality.quarantine ORDER BY reason")["reason"].tolist()
    assert len(reasons) == 2 and reasons[0].startswith("not JSON") and "KeyError" in reasons[1]
    assert waiting(amqp_queue) == 0


def test_an_unreachable_broker_names_the_setting_and_hides_the_password(hub: HubResource):
    queue = CommerceQueueResource(url="amqp://guest:s3cret-pw@127.0.0.1:1/%2F", queue="unused")
    with dg.instance_for_test() as instance, pytest.raises(QueueUnavailableError) as raised:
        tick(instance, hub, queue)
    assert "COMMERCE_SUBSCRIPTION_AMQP_URL" in str(raised.value) and "s3cret-pw" not in str(raised.value)
    assert "amqp://guest:***@127.0.0.1:1" in str(raised.value)
