"""Peak memory of a full commerce sync, in a process of its own.

`python -m benchmarks.rss SIMULATOR_URL HUB_FILE` runs the sync and prints one JSON line with the
process's peak resident set size, the time and the records synced. The peak is `VmHWM` from
/proc/self/status: `ru_maxrss` survives exec on Linux, so a child would report its parent's peak.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own high-water resident set size, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, includes the parent's


def main(simulator_url: str, hub_file: str) -> None:
    from benchmarks.sync import run_commerce_sync
    from resources.hub import HubResource

    timing = run_commerce_sync(simulator_url, HubResource(url=f"duckdb:///{hub_file}"))
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "seconds": timing.seconds, "records": timing.records}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
