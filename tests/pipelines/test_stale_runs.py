"""A run killed while it holds the `hub` pool slot no longer blocks every later run."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from dagster_project.stale_runs import release_dead_runs

HOLDER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg

    @dg.op(pool="hub")
    def hold():
        open(sys.argv[1], "w").close()
        time.sleep(300)

    @dg.job
    def holder():
        hold()

    holder.execute_in_process(instance=dg.DagsterInstance.get())
    """
)


def test_a_killed_run_is_marked_failed_and_its_slot_freed(tmp_path: Path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    started = tmp_path / "started"
    worker = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(started)],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert worker.poll() is None and time.monotonic() < deadline, "the holding run never started"
            time.sleep(0.1)
        with dg.DagsterInstance.get() as instance:
            [run_id] = instance.event_log_storage.get_concurrency_run_ids()
            assert release_dead_runs(instance) == []  # alive: left alone
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("hub").active_slot_count == 1
        assert release_dead_runs(instance) == [run_id]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
        assert instance.event_log_storage.get_concurrency_info("hub").active_slot_count == 0
        assert release_dead_runs(instance) == []
