"""The commerce sync as Dagster runs it, timed per stage: extract and load, transform, validate."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import dagster as dg

from assets.commerce import commerce_assets
from benchmarks.simulator import CLIENT_ID, CLIENT_SECRET, PROJECT_KEY
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from resources.commerce import CommerceToolsResource, Page, PageBody
from resources.hub import HUB_POOL, HubResource

RAW_ASSETS = [a for a in commerce_assets if all(k.path[0] == "raw" for k in a.keys)]
RAW_STEPS = {a.op.name for a in RAW_ASSETS}
CORE_STEPS = {a.op.name for a in commerce_assets} - RAW_STEPS
CHECKS = build_suite_checks(COMMERCE_SUITES, pool=HUB_POOL)
T = TypeVar("T")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

# Filled while pages are consumed (runs are in-process): seconds the page reader waited, and records.
_extract = {"seconds": 0.0, "records": 0}


def _timed(pages: Iterator[T]) -> Iterator[T]:
    while True:
        started = time.perf_counter()
        page = next(pages, None)
        _extract["seconds"] += time.perf_counter() - started
        if page is None:
            return
        _extract["records"] += page.count if isinstance(page, PageBody) else len(page)
        yield page


class TimedCommerce(CommerceToolsResource):
    """The commerce resource, counting the records it yields and the time spent waiting for them."""

    def export_pages(self, resource: str, where: Sequence[str] = ()) -> Iterator[Page]:
        return _timed(super().export_pages(resource, where))

    def export_bodies(self, resource: str, where: Sequence[str] = ()) -> Iterator[PageBody]:
        return _timed(super().export_bodies(resource, where))

    def changed_pages(self, resource: str, since: datetime) -> Iterator[Page]:
        return _timed(super().changed_pages(resource, since))


def commerce_resource(simulator_url: str) -> TimedCommerce:
    url = f"{simulator_url}/commerce"
    return TimedCommerce(
        project_key=PROJECT_KEY, api_url=url, auth_url=url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )


@dataclass
class SyncTiming:
    """One timed run. `stages` hold seconds; `records` counts source records extracted."""

    seconds: float
    records: int
    cpu_seconds: float
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "records": self.records,
            "records_per_s": self.records_per_s,
            **self.stages,
        }


def run_commerce_sync(simulator_url: str, hub: HubResource, *, mode: str = "full", checks: bool = True) -> SyncTiming:
    """Materialize the commerce group (and its checks) in-process; raise if any step fails."""
    _extract.update(seconds=0.0, records=0)
    run_config = {**QUIET, "ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_ASSETS}}
    with dg.DagsterInstance.ephemeral() as instance:  # closed here, not by a garbage collection in some thread
        started, cpu_started = time.perf_counter(), time.process_time()
        result = dg.materialize(
            [*commerce_assets, *(CHECKS if checks else ())],
            resources={"hub": hub, "commerce": commerce_resource(simulator_url)},
            run_config=run_config,
            instance=instance,
        )
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        steps = step_seconds(instance, result.run_id)
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    if failed:
        raise RuntimeError(f"commerce checks failed: {failed}")
    stages = {
        "extract_and_load": sum(s for k, s in steps.items() if k in RAW_STEPS),
        "transform": sum(s for k, s in steps.items() if k in CORE_STEPS),
        "validate": sum(s for k, s in steps.items() if k not in RAW_STEPS | CORE_STEPS),
    }
    stages["orchestration"] = seconds - sum(steps.values())
    stages["waiting_for_pages"] = _extract["seconds"]  # within extract_and_load, overlapped with typing and staging
    return SyncTiming(seconds, _extract["records"], cpu_seconds, stages)


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's time from its start event to its success event."""
    starts: dict[str, float] = {}
    durations: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            durations[entry.step_key] = entry.timestamp - starts[entry.step_key]
    return durations
