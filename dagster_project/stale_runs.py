"""Free the `hub` pool slot of runs whose process died (`python -m dagster_project.stale_runs`).

A run killed mid-step (Ctrl-C on `make ui` twice, SIGKILL, a crashed machine) stays STARTED in the
local instance and keeps its concurrency slot; with the `hub` pool limited to one, every later run
then waits for that slot forever. The daemon's run monitoring frees slots of finished runs only
(`free_slots_after_run_end_seconds` in dagster.yaml). This finds in-progress runs that hold slots
and whose processes (the pids their executors logged) are all gone on this machine, marks them
failed and frees their slots. It is for the local instance (`make demo`, `make ui`): on a
deployment where runs execute on other hosts their pids mean nothing here, so it is not run there.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

# The statuses in which a run can hold a concurrency slot.
RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def worker_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The pids the run's executor and run worker logged (engine events carry them as metadata)."""
    pids = set()
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data if record.dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            pids.add(int(pid.value))
    return pids


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail in-progress runs holding slots whose processes are all gone, free their slots; their ids."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = storage.get_concurrency_run_ids()
    if not holders:
        return []
    released = []
    records = instance.get_run_records(dg.RunsFilter(run_ids=list(holders), statuses=RUNNING))
    for record in records:
        run = record.dagster_run
        pids = worker_pids(instance, run.run_id)
        if not pids or any(_alive(pid) for pid in pids):
            continue  # no pid logged yet (just starting) or still running: leave it alone
        instance.report_run_failed(run, f"The run's processes {sorted(pids)} are gone; marked failed, slots freed.")
        storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def main() -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: nothing to check", file=sys.stderr)
        return 0
    with dg.DagsterInstance.get() as instance:
        for run_id in release_dead_runs(instance):
            print(f"run {run_id} had died holding a concurrency slot: marked failed, slot freed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
