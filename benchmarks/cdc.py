"""CDC apply latency: changes recorded at the source until the serving row shows them, through the sensor's code."""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
import orjson

from benchmarks.sync import QUIET, commerce_resource, step_seconds
from dagster_project.definitions import defs
from pipelines.jobs import CHANGED_SERVING, COMMERCE_CHANGES_JOBS
from pipelines.sensors.commerce_messages import commerce_messages_sensor
from resources.hub import HubResource

CHANGED_PRODUCTS = 10
# What full_sync_job leaves behind besides core: the serving models the apply run follows, built whole.
serving_build_job = dg.define_asset_job("cdc_serving_build", selection=CHANGED_SERVING.without_checks())


def apply_latency(sim: Any, hub: HubResource, repeat: int) -> dict[str, Any]:
    """`repeat` rounds of: 10 products change, one sensor tick, the apply run it requests, in-process.

    `hub` must hold a full commerce sync; the serving models are built from it first (untimed, as
    `full_sync_job` leaves them). Each round is checked: every changed product's name in
    `serving.v1_product_experience` is the one the source now has.
    """
    commerce = commerce_resource(sim.url)
    resources = {**defs.resources, "hub": hub, "commerce": commerce}
    definitions = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[*COMMERCE_CHANGES_JOBS, serving_build_job],
        resources=resources,
    )
    runs = []
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        if (
            not definitions.resolve_job_def(serving_build_job.name)
            .execute_in_process(instance=instance, run_config=QUIET)
            .success
        ):
            raise RuntimeError("building the serving models on the full-sync hub failed")
        serving_build = time.perf_counter() - started
        cursor = _tick(instance, commerce, hub, None)[1]  # position the sensor after the messages so far
        for _ in range(repeat):
            changed = sim.admin("POST", "churn", products=CHANGED_PRODUCTS)["products"]
            started = time.perf_counter()
            request, cursor = _tick(instance, commerce, hub, cursor)
            ticked = time.perf_counter()
            if not isinstance(request, dg.RunRequest):
                raise RuntimeError(f"the sensor did not request a run for {CHANGED_PRODUCTS} changes: {request}")
            run_config = {**request.run_config, **QUIET}
            job = definitions.resolve_job_def(request.job_name)  # the whole change job or the one for a kind
            result = job.execute_in_process(instance=instance, run_config=run_config, tags=request.tags)
            finished = time.perf_counter()
            if not result.success:
                raise RuntimeError(f"the {request.job_name} run failed")
            _check_serving(hub, commerce, changed)
            steps = sorted(step_seconds(instance, result.run_id).items(), key=lambda step: -step[1])
            runs.append(
                {
                    "seconds": finished - started,
                    "sensor_tick": ticked - started,
                    "apply_run": finished - ticked,
                    "steps": len(steps),
                    "job": request.job_name,
                    "slowest_steps": dict(steps[:5]),
                }
            )
    return {
        "changes": CHANGED_PRODUCTS,
        "serving_build_s": serving_build,
        "runs": runs,
        "sensor_interval_s": commerce_messages_sensor.minimum_interval_seconds,
    }


def _tick(instance: dg.DagsterInstance, commerce: Any, hub: HubResource, cursor: str | None) -> tuple[Any, str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"commerce": commerce, "hub": hub})
    return commerce_messages_sensor(context), context.cursor


def _check_serving(hub: HubResource, commerce: Any, product_ids: list[str]) -> None:
    marks = ", ".join("?" * len(product_ids))
    frame = hub.read_frame(
        f"SELECT product_id, name FROM serving.v1_product_experience WHERE product_id IN ({marks})", product_ids
    )
    served = {row.product_id: orjson.loads(row.name) for row in frame.itertuples()}
    stale = [pid for pid in product_ids if served.get(pid) != commerce.get("product-projections", pid)["name"]]
    if stale:
        raise RuntimeError(f"serving.v1_product_experience does not show the change of {len(stale)} product(s)")
