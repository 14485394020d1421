"""Background churn and the commerce subscription's admin endpoint."""

import subprocess
import sys
import time

import orjson
import requests

from simulators.server import start_in_thread
from tests.conftest import AmqpQueue


def test_background_churn_changes_every_system_and_stops_with_the_server():
    with start_in_thread(products=30, seed=3, churn_every=0.2) as handle:
        before = requests.get(f"{handle.url}/_admin/stats", timeout=10).json()
        time.sleep(1.0)
        after = requests.get(f"{handle.url}/_admin/stats", timeout=10).json()
    assert after["warehouse"]["last_sequence"] > before["warehouse"]["last_sequence"]
    assert after["payments"]["charges"] > before["payments"]["charges"]
    assert not handle.churn.is_alive()


def test_churn_every_must_be_positive():
    done = subprocess.run(
        [sys.executable, "-m", "simulators", "serve", "--port", "0", "--churn-every", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--churn-every" in done.stderr


def test_subscription_admin_checks_the_url_and_masks_the_password(amqp_queue: AmqpQueue):
    with start_in_thread(products=20, seed=3) as handle:
        admin = f"{handle.url}/_admin/subscription"
        assert requests.get(admin, timeout=10).json() == {"destination": None}
        assert requests.post(admin, json={"url": "http://nope"}, timeout=10).status_code == 400
        refused = requests.post(admin, json={"url": "amqp://guest:s3cret-pw@127.0.0.1:1/%2F"}, timeout=30)
        assert refused.status_code == 502 and "s3cret-pw" not in refused.text and "***" in refused.text

        on = requests.post(admin, json={"url": amqp_queue.url, "queue": amqp_queue.name}, timeout=30).json()
        assert on["queue"] == amqp_queue.name
        churned = requests.post(f"{handle.url}/_admin/churn", json={"products": 2, "inventory": 3}, timeout=30).json()
        assert requests.get(admin, timeout=10).json()["published"] == 5
        assert requests.delete(admin, timeout=10).json() == {"destination": None}
        requests.post(f"{handle.url}/_admin/churn", json={"products": 1}, timeout=30)  # not published

    channel = amqp_queue.channel()
    received = []
    while (delivery := channel.basic_get(amqp_queue.name, auto_ack=True))[0] is not None:
        _method, properties, body = delivery
        received.append((properties.message_id, properties.delivery_mode, orjson.loads(body)["resource"]["id"]))
    channel.connection.close()
    assert sorted(r[2] for r in received) == sorted([*churned["products"], *churned["inventory"]])
    assert {r[1] for r in received} == {2} and all(r[0] for r in received)
