"""The raw limit: the same pages as the sync, fetched and parsed by a bare requests + orjson loop.

`python -m benchmarks.rawlimit SIMULATOR_URL` runs the loop in a process of its own and prints one
JSON line: its seconds, records and CPU seconds. A process of its own, because in the harness's
process the loop paid for Python's garbage collector walking every object that Dagster, pandas and
Great Expectations had built (some 370,000) each time a page's objects aged: 12 s against 7 s for
the same loop with the collector off, in the same process (docs/performance.md, twelfth session).
"""

from __future__ import annotations

import json
import sys
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


def main(simulator_url: str) -> None:
    cpu_started = time.process_time()
    seconds, records = fetch_everything(simulator_url)
    print(json.dumps({"seconds": seconds, "records": records, "cpu_seconds": time.process_time() - cpu_started}))


if __name__ == "__main__":
    main(sys.argv[1])
