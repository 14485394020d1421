"""Shared fixtures: one simulator process on a free loopback port, and a fresh hub per test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions
import psycopg
import pytest
import requests
import sqlalchemy.engine

from resources.alerts import AlertWebhookResource
from resources.analytics import AnalyticsResource
from resources.commerce import CommerceToolsResource
from resources.hub import HubResource
from resources.payments import StripeResource
from resources.pii import PiiHashResource
from resources.rules import RulesResource
from resources.warehouse import WarehouseResource

PROJECT_KEY = "beauty-hub"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret-7f3a"
DEFAULT_PRODUCTS = 300
DEFAULT_SEED = 7
RULES_FILE = Path(__file__).parent.parent / "dagster_project" / "rules.yaml"
# Set by .ci/run. When set, the Postgres variants must run (and fail loudly if the server is down).
POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")
# Set by .ci/run. When set, the RabbitMQ tests must run (and fail loudly if the broker is down).
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL")
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Simulator:
    url: str

    def admin(self, method: str, path: str, **body) -> dict:
        response = requests.request(method, f"{self.url}/_admin/{path}", json=body or None, timeout=120)
        response.raise_for_status()
        return response.json()

    def reset(self, products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED) -> dict:
        return self.admin("POST", "reset", products=products, seed=seed)

    def stats(self) -> dict:
        return self.admin("GET", "stats")

    @property
    def commerce_url(self) -> str:
        return f"{self.url}/commerce"


@pytest.fixture(scope="session", autouse=True)
def quality_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Suite checks write Data Docs under QUALITY_DIR: a temporary one, never the project's data/quality."""
    path = tmp_path_factory.mktemp("quality")
    before = os.environ.get("QUALITY_DIR")
    os.environ["QUALITY_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("QUALITY_DIR", None)
    else:
        os.environ["QUALITY_DIR"] = before


@pytest.fixture(scope="session")
def simulator_process() -> Iterator[Simulator]:
    port = free_port()
    command = [
        sys.executable, "-m", "simulators", "serve", "--port", str(port),
        "--products", str(DEFAULT_PRODUCTS), "--seed", str(DEFAULT_SEED),
        "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"simulator exited with {process.returncode}: {process.stdout.read()}")
        try:
            requests.get(f"{url}/_admin/stats", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("simulator did not answer /_admin/stats within 60 s")
            time.sleep(0.1)
    yield Simulator(url)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def simulator(simulator_process: Simulator) -> Simulator:
    """The simulator with a clean default world, no faults and the default token lifetime."""
    simulator_process.admin("DELETE", "faults")
    simulator_process.admin("POST", "auth", token_ttl_seconds=172800, expire_tokens=True)
    simulator_process.reset()
    return simulator_process


def commerce_resource(simulator: Simulator, **overrides) -> CommerceToolsResource:
    settings = dict(
        project_key=PROJECT_KEY,
        api_url=simulator.commerce_url,
        auth_url=simulator.commerce_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        backoff_initial_s=0.01,
        backoff_max_s=0.5,
    )
    return CommerceToolsResource(**{**settings, **overrides})


@pytest.fixture
def commerce(simulator: Simulator) -> CommerceToolsResource:
    return commerce_resource(simulator)


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    return tmp_path / "hub.duckdb"


@pytest.fixture
def hub(hub_path: Path) -> HubResource:
    return HubResource(url=f"duckdb:///{hub_path}")


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a Postgres database of its own, dropped afterwards; skips without HUB_TEST_POSTGRES_URL."""
    if not POSTGRES_URL:
        pytest.skip("HUB_TEST_POSTGRES_URL is not set, so the Postgres variant is skipped")
    server = sqlalchemy.engine.make_url(POSTGRES_URL)
    database = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = dict(host=server.host, port=server.port or 5432, user=server.username, dbname=server.database)
    with psycopg.connect(**admin, password=server.password, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{database}"')
    try:
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin, password=server.password, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextmanager
def postgres_hub() -> Iterator[HubResource]:
    """A hub in a Postgres database of its own."""
    with postgres_database() as url:
        yield HubResource(url=url)


@pytest.fixture(params=["duckdb", "postgres"])
def each_hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubResource]:
    """A fresh hub on each backend: a DuckDB file, and a Postgres database of its own."""
    if request.param == "duckdb":
        yield HubResource(url=f"duckdb:///{tmp_path / 'hub.duckdb'}")
    else:
        with postgres_hub() as hub:
            yield hub


def every_resource(simulator: Simulator, hub: HubResource, landing_dir: Path) -> dict:
    """Every resource the definitions need, pointed at the test simulator, with quick retries."""
    quick = {"backoff_initial_s": 0.01, "backoff_max_s": 0.5}
    return {
        "hub": hub,
        "commerce": commerce_resource(simulator),
        "payments": StripeResource(api_url=f"{simulator.url}/payments", api_key="sk_test_hub", **quick),
        "warehouse": WarehouseResource(
            api_url=f"{simulator.url}/warehouse", api_key="wh_test_hub", landing_dir=str(landing_dir), **quick
        ),
        "analytics": AnalyticsResource(
            api_url=f"{simulator.url}/analytics/v1", property_id="123456789", api_key="an_test_hub", **quick
        ),
        "pii": PiiHashResource(salt="test-salt-0123456789"),
        "rules": RulesResource(path=str(RULES_FILE)),
        "alert_webhook": AlertWebhookResource(),
    }


@dataclass
class AmqpQueue:
    url: str
    name: str

    def channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        return pika.BlockingConnection(pika.URLParameters(self.url)).channel()


@pytest.fixture
def amqp_queue() -> Iterator[AmqpQueue]:
    """A queue of its own on the test RabbitMQ, deleted afterwards; skips if the broker is not reachable,
    unless HUB_TEST_AMQP_URL is set."""
    url = AMQP_URL or LOCAL_AMQP_URL
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except pika.exceptions.AMQPError as exc:
        if AMQP_URL:
            pytest.fail(f"HUB_TEST_AMQP_URL is set but RabbitMQ cannot be reached: {type(exc).__name__}")
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672 and HUB_TEST_AMQP_URL is not set")
    queue = AmqpQueue(url, f"hub-test-{uuid.uuid4().hex[:12]}")
    yield queue
    channel = queue.channel()
    channel.queue_delete(queue.name)
    channel.connection.close()
