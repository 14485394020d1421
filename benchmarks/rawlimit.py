"""The raw limit: the same pages as the sync, fetched and parsed by a bare requests + orjson loop."""

from __future__ import annotations

import time

import orjson
import requests

from benchmarks.simulator import CLIENT_ID, CLIENT_SECRET, PROJECT_KEY

# What the full commerce sync exports, with the same page size and keyset paging.
RESOURCES = ("product-projections", "inventory", "channels", "categories")
PAGE_SIZE = 500


def fetch_everything(simulator_url: str) -> tuple[float, int]:
    """(seconds, records) for every page of every resource, parsed and dropped."""
    base = f"{simulator_url}/commerce"
    session = requests.Session()
    token = session.post(
        f"{base}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": f"manage_project:{PROJECT_KEY}"},
        timeout=30,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    records = 0
    started = time.perf_counter()
    for resource in RESOURCES:
        last_id = None
        while True:
            params = [("limit", str(PAGE_SIZE)), ("withTotal", "false"), ("sort", "id asc")]
            if last_id is not None:
                params += [("where", "id > :last_id"), ("var.last_id", last_id)]
            response = session.get(f"{base}/{PROJECT_KEY}/{resource}", params=params, timeout=60)
            response.raise_for_status()
            page = orjson.loads(response.content)["results"]
            records += len(page)
            if len(page) < PAGE_SIZE:
                break
            last_id = page[-1]["id"]
    return time.perf_counter() - started, records
