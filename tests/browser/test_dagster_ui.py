"""`dagster dev` on a free port, in Chromium: the asset graph shows every group, the checks pages list the checks.

The server runs the project's workspace with its own DAGSTER_HOME, pointed at the test simulator and a fresh
hub; nothing is materialized. It is started in a process group of its own and stopped by signalling the group.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from dagster_project.definitions import defs
from tests.browser.conftest import Watched
from tests.conftest import CLIENT_ID, CLIENT_SECRET, Simulator, free_port

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = PROJECT / ".venv" / "bin" / "dagster"
STARTUP_TIMEOUT_S = 90


def checks_by_asset() -> dict[str, set[str]]:
    checks: dict[str, set[str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    return checks


def groups_by_asset() -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}


def server_environment(simulator: Simulator, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HUB_URL": f"duckdb:///{home / 'hub.duckdb'}",
        "QUALITY_DIR": str(home / "quality"),
        "WAREHOUSE_LANDING_DIR": str(home / "landing"),
        "COMMERCE_API_URL": simulator.commerce_url,
        "COMMERCE_AUTH_URL": simulator.commerce_url,
        "COMMERCE_CLIENT_ID": CLIENT_ID,
        "COMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "PAYMENTS_API_URL": f"{simulator.url}/payments",
        "PAYMENTS_API_KEY": "sk_test_hub",
        "WAREHOUSE_API_URL": f"{simulator.url}/warehouse",
        "WAREHOUSE_API_KEY": "wh_test_hub",
        "ANALYTICS_API_URL": f"{simulator.url}/analytics/v1",
        "ANALYTICS_API_KEY": "an_test_hub",
        "PII_HASH_SALT": "test-salt-0123456789",
    }


@pytest.fixture(scope="module")
def dagster_ui(simulator_process: Simulator, tmp_path_factory) -> Iterator[str]:
    """The URL of a `dagster dev` webserver (and daemon) serving this project."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(PROJECT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    log = (home / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=server_environment(simulator_process, home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"dagster dev exited with {process.returncode}: {(home / 'dagster-dev.log').read_text()[-3000:]}"
                )
            try:
                if requests.get(f"{url}/server_info", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(process)
        log.close()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (webserver, daemon, code servers), then SIGKILL if it lingers."""
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children of the group may outlive the leader
        os.killpg(group, signal.SIGKILL)


def skip_community_dialog(watched: Watched, wait_ms: int) -> None:
    """A fresh instance greets its first visitor with a "Join the Dagster community" dialog: click Skip.

    The instance remembers it, so later visits have no dialog; wait for it only on the first.
    """
    skip = watched.page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=wait_ms)
    except PlaywrightTimeout:
        return
    skip.click()
    expect(skip).to_have_count(0)


def test_asset_graph_shows_every_group(dagster_ui: str, watched: Watched):
    groups = set(groups_by_asset().values())
    assert {"analytics", "commerce", "payments", "quality", "serving", "warehouse"} <= groups
    page = watched.page
    page.goto(f"{dagster_ui}/asset-groups", timeout=60_000)
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=60_000)
    skip_community_dialog(watched, wait_ms=15_000)
    for group in sorted(groups):
        expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("fetching statuses")).to_have_count(0, timeout=60_000)
    watched.screenshot("asset-graph.png")
    assert watched.page_errors == []


def test_asset_checks_pages_list_the_checks(dagster_ui: str, watched: Watched):
    """For the asset with the most checks in each group, its Checks tab lists every one of them by name."""
    checks, groups = checks_by_asset(), groups_by_asset()
    busiest: dict[str, str] = {}
    for asset in sorted(checks):
        group = groups[asset]
        if group not in busiest or len(checks[asset]) > len(checks[busiest[group]]):
            busiest[group] = asset
    assert len(busiest) >= 5
    page = watched.page
    for asset in busiest.values():
        page.goto(f"{dagster_ui}/assets/{asset}?view=checks", timeout=60_000)
        expect(page.get_by_text(f"Checks ({len(checks[asset])})")).to_be_visible(timeout=60_000)
        skip_community_dialog(watched, wait_ms=500)
        for name in checks[asset]:
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        if asset == "serving/v1_sourcing_options":
            watched.screenshot("asset-checks.png")
    assert watched.page_errors == []
