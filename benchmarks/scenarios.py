"""The scenarios of issue 9, each run `repeat` times, and the targets they are held to."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from assets.commerce import INVENTORY_ENTRIES
from benchmarks import postgres
from benchmarks.simulator import ROOT, SimulatorProcess
from benchmarks.sync import run_commerce_sync
from resources.hub import HubResource

CHANGED_PRODUCTS = 100
# The first four add up to the end-to-end time; waiting_for_pages is the page reader's part of the first.
STAGES = ("extract_and_load", "transform", "validate", "orchestration", "waiting_for_pages")


def summary(values: list[float]) -> dict[str, Any]:
    """Median, min and max of the runs, and the runs themselves."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def _cpu_floor(run: dict[str, Any], sim_before: float | None, sim_after: float | None, raw_s: float) -> dict:
    """The shortest sync its CPU work allows here, the pipeline's and the simulator's spread over every core,
    and the full sync / raw limit ratio that would give: no overlap of steps reaches a higher one."""
    if sim_before is None or sim_after is None:
        return {}
    simulator_cpu = sim_after - sim_before
    floor = (run["cpu_seconds"] + simulator_cpu) / (os.cpu_count() or 1)
    return {"simulator_cpu_seconds": simulator_cpu, "cpu_floor_seconds": floor, "cpu_floor_vs_raw_limit": raw_s / floor}


def child_json(module: str, *args: str, what: str) -> dict[str, Any]:
    """`python -m module args` in a process of its own, and the JSON line it prints last."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{what} failed: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


# Scenario groups after the full sync (which the others start from): `--only` picks some of them.
SCENARIO_GROUPS = frozenset({"postgres", "cdc", "scaling"})


class Bench:
    def __init__(
        self,
        products: int,
        scaling_products: int,
        repeat: int,
        seed: int,
        postgres_url: str,
        only: frozenset[str] = SCENARIO_GROUPS,
    ):
        self.products, self.scaling, self.repeat, self.seed = products, scaling_products, repeat, seed
        self.postgres_url, self.only = postgres_url, only

    def run(self) -> dict[str, Any]:
        started, load_before = datetime.now(UTC), os.getloadavg()
        scenarios: dict[str, Any] = {}
        clock = time.perf_counter()
        parts: dict[str, float] = {}

        def lap(name: str) -> None:
            nonlocal clock
            parts[name], clock = time.perf_counter() - clock, time.perf_counter()

        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, SimulatorProcess(self.products, self.seed) as sim:
            work = Path(tmp)
            catalog = sim.commerce_stats()
            lap("simulator start")
            full, raw, serving, hub = self.full_sync_and_raw_limit(sim, work)
            scenarios["full_sync"], scenarios["raw_limit"], scenarios["simulator_serving"] = full, raw, serving
            scenarios["validation"] = {
                "share": summary([r["validate"] / r["seconds"] for r in full["runs"]]),
                "seconds": full["stages"]["validate"]["seconds"],
            }
            lap("full sync and raw limit")
            skipped = {"status": "not run", "reason": "left out by --only"}
            for name in ("postgres", "cdc_latency", "incremental", "peak_rss"):
                scenarios[name] = skipped
            if "postgres" in self.only:
                scenarios["postgres"] = _guarded(lambda: self.postgres(sim, hub))
                lap("postgres")
            if "cdc" in self.only:
                scenarios["cdc_latency"] = _guarded(lambda: self.cdc_latency(sim, hub))
                lap("cdc latency")
            if "scaling" in self.only:
                scaling = _guarded(lambda: self.scaling_scenarios(sim, work))
                scenarios["incremental"], scenarios["peak_rss"] = (
                    scaling if isinstance(scaling, tuple) else (scaling, scaling)
                )
                lap("incremental and peak rss")
        return {
            "meta": {
                "started_at": started.isoformat(),
                "seconds": (datetime.now(UTC) - started).total_seconds(),
                "seconds_per_part": parts,
                "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
                "products": self.products,
                "scaling_products": {"n": self.scaling, "10n": 10 * self.scaling},
                "repeat": self.repeat,
                "seed": self.seed,
                "catalog": {k: catalog[k] for k in ("products", "variants", "prices", "inventory_entries")},
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
                "git_revision": _git_revision(),
            },
            "scenarios": scenarios,
            "targets": targets(scenarios),
        }

    def full_sync_and_raw_limit(self, sim: SimulatorProcess, work: Path) -> tuple[dict, dict, dict, HubResource]:
        """Scenarios 1, 2 and the simulator's serving rate, run side by side: raw loop, then sync, per round."""
        runs, raw_runs, serving, hub = [], [], [], None
        for number in range(self.repeat):
            cpu_before = sim.cpu_seconds()
            raw_run = child_json("benchmarks.rawlimit", sim.url, what="the raw-limit loop")
            cpu_after, seconds, records = sim.cpu_seconds(), raw_run["seconds"], raw_run["records"]
            raw_runs.append({**raw_run, "records_per_s": records / seconds})
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                serving.append(records / (cpu_after - cpu_before))
            hub = HubResource(url=f"duckdb:///{work / f'full_{number}.duckdb'}")
            sim_before = sim.cpu_seconds()
            run = run_commerce_sync(sim.url, hub).as_dict()
            run.update(_cpu_floor(run, sim_before, sim.cpu_seconds(), seconds))
            runs.append(run)
        for run, raw in zip(runs, raw_runs, strict=True):
            run["vs_raw_limit"] = run["records_per_s"] / raw["records_per_s"]
        full = {
            "records": runs[0]["records"],
            "seconds": summary([r["seconds"] for r in runs]),
            "records_per_s": summary([r["records_per_s"] for r in runs]),
            "vs_raw_limit": summary([r["vs_raw_limit"] for r in runs]),
            "cpu_seconds": summary([r["cpu_seconds"] for r in runs]),
            "cores_busy": summary([r["cpu_seconds"] / r["seconds"] for r in runs]),
            **(
                {"cpu_floor_vs_raw_limit": summary([r["cpu_floor_vs_raw_limit"] for r in runs])}
                if all("cpu_floor_vs_raw_limit" in r for r in runs)
                else {}
            ),
            "stages": {
                stage: {
                    "seconds": summary([r[stage] for r in runs]),
                    "share": summary([r[stage] / r["seconds"] for r in runs]),
                    "records_per_s": summary([r["records"] / r[stage] if r[stage] > 0 else 0.0 for r in runs]),
                }
                for stage in STAGES
            },
            "runs": runs,
        }
        raw = {
            "what": "bare requests + orjson in a process of its own, one connection, the same keyset-paged requests",
            "records": raw_runs[0]["records"],
            "seconds": summary([r["seconds"] for r in raw_runs]),
            "records_per_s": summary([r["records_per_s"] for r in raw_runs]),
            "cpu_seconds": summary([r["cpu_seconds"] for r in raw_runs]),
        }
        if serving:
            pipeline = full["records_per_s"]["median"]
            serving_result = {
                "what": "records served per CPU second of the simulator process, during the raw-limit loop",
                "records_per_s": summary(serving),
                "vs_pipeline": statistics.median(serving) / pipeline,
            }
        else:
            serving_result = {"status": "not available", "reason": "no /proc to read the simulator's CPU time"}
        return full, raw, serving_result, hub

    def postgres(self, sim: SimulatorProcess, duckdb_hub: HubResource) -> dict[str, Any]:
        """Scenario 6: the full sync into Postgres, and its load path against pandas.to_sql on the same rows."""
        try:
            with postgres.scratch_database(self.postgres_url):
                pass
        except (psycopg.Error, OSError) as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            reason = f"no Postgres at BENCH_POSTGRES_URL / --postgres-url: {reason}"
            return {"status": "not available", "reason": reason}
        syncs, upserts, inserts, to_sql = [], [], [], []
        rows = postgres.read_arrow(duckdb_hub, INVENTORY_ENTRIES)
        for _ in range(self.repeat):
            with postgres.scratch_database(self.postgres_url) as url:
                syncs.append(run_commerce_sync(sim.url, HubResource(url=url)).as_dict())
            with postgres.scratch_database(self.postgres_url) as url:
                seconds = postgres.hub_upsert_seconds(url, INVENTORY_ENTRIES, rows)
                inserts.append(rows.num_rows / seconds["insert"])
                upserts.append(rows.num_rows / seconds["upsert"])
                to_sql.append(rows.num_rows / postgres.to_sql_seconds(url, rows))
        return {
            "full_sync": {
                "records": syncs[0]["records"],
                "seconds": summary([r["seconds"] for r in syncs]),
                "records_per_s": summary([r["records_per_s"] for r in syncs]),
                "stages": {stage: summary([r[stage] for r in syncs]) for stage in STAGES},
            },
            "load_path": {
                "table": INVENTORY_ENTRIES.name,
                "rows": rows.num_rows,
                "insert_rows_per_s": summary(inserts),
                "upsert_rows_per_s": summary(upserts),
                "to_sql_rows_per_s": summary(to_sql),
                "upsert_vs_to_sql": summary([u / t for u, t in zip(upserts, to_sql, strict=True)]),
            },
        }

    def cdc_latency(self, sim: SimulatorProcess, hub: HubResource) -> dict[str, Any]:
        """Scenario 4 on the full-sync hub: 10 changes, the sensor tick, the apply run, the serving row."""
        from benchmarks.cdc import apply_latency

        result = apply_latency(sim, hub, self.repeat)
        runs = result.pop("runs")
        return {
            **result,
            "what": "churn returns -> sensor tick -> commerce_changes_job in-process -> serving row checked",
            "seconds": summary([r["seconds"] for r in runs]),
            "sensor_tick_seconds": summary([r["sensor_tick"] for r in runs]),
            "apply_run_seconds": summary([r["apply_run"] for r in runs]),
            "runs": runs,
        }

    def scaling_scenarios(self, sim: SimulatorProcess, work: Path) -> tuple[dict, dict]:
        """Scenarios 3 and 5 at N and 10N: peak RSS of a full sync, then incremental syncs on its hub."""
        incremental: dict[str, Any] = {"changed_products": CHANGED_PRODUCTS}
        rss: dict[str, Any] = {}
        for label, size in (("10n", 10 * self.scaling), ("n", self.scaling)):
            if sim.products != size:
                sim.reset(size)
            hub_file = work / f"scaling_{label}.duckdb"
            peak = [self.peak_rss(sim, hub_file if number == 0 else work / f"rss_{label}_{number}.duckdb")
                    for number in range(self.repeat)]  # fmt: skip
            rss[label] = {"products": size, "peak_rss_mb": summary([p["peak_rss_mb"] for p in peak]), "runs": peak}
            incremental[label] = {"products": size, **self.incremental(sim, HubResource(url=f"duckdb:///{hub_file}"))}
        seconds = {label: incremental[label]["seconds"]["median"] for label in ("n", "10n")}
        incremental["10n_over_n"] = ratio(seconds["10n"], seconds["n"])
        rss["10n_over_n"] = ratio(rss["10n"]["peak_rss_mb"]["median"], rss["n"]["peak_rss_mb"]["median"])
        return incremental, rss

    def peak_rss(self, sim: SimulatorProcess, hub_file: Path) -> dict[str, Any]:
        return child_json("benchmarks.rss", sim.url, str(hub_file), what="the peak-memory run")

    def incremental(self, sim: SimulatorProcess, hub: HubResource) -> dict[str, Any]:
        """`repeat` incremental syncs (raw and core, no checks), each after 100 products changed."""
        runs = []
        for _ in range(self.repeat):
            sim.admin("POST", "churn", products=CHANGED_PRODUCTS)
            time.sleep(0.01)  # the changes' timestamps are now in the past
            runs.append(run_commerce_sync(sim.url, hub, mode="incremental", checks=False).as_dict())
        return {"seconds": summary([r["seconds"] for r in runs]), "runs": runs}


def _guarded(scenario: Callable[[], Any]) -> Any:
    """A scenario's result, or why it failed: one broken scenario does not cost the others."""
    try:
        return scenario()
    except Exception as exc:
        return {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc).strip()[:500]}"}


def _git_revision() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _target(name: str, measured: float | None, op: str, goal: float, unit: str, note: str = "") -> dict[str, Any]:
    met = None if measured is None else (measured >= goal if op == ">=" else measured <= goal)
    return {"name": name, "measured": measured, "op": op, "target": goal, "unit": unit, "met": met, "note": note}


def _median(scenario: dict[str, Any], *path: str) -> float | None:
    value: Any = scenario
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value["median"] if isinstance(value, dict) else value


RAW_LIMIT_GOAL = 0.70


def _cpu_capped(floor_ratio: float | None) -> str:
    """Why no overlap of steps can meet the raw-limit goal here, when the sync's CPU work rules it out."""
    if floor_ratio is None or floor_ratio >= RAW_LIMIT_GOAL:
        return ""
    return f"its CPU work allows at most {floor_ratio:.2f} on this machine"


def targets(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 9, measured or not (`met` is None when its scenario could not run)."""
    cdc = s["cdc_latency"]
    return [
        _target(
            "full sync vs raw limit",
            _median(s["full_sync"], "vs_raw_limit"),
            ">=",
            RAW_LIMIT_GOAL,
            "ratio",
            _cpu_capped(_median(s["full_sync"], "cpu_floor_vs_raw_limit")),
        ),
        _target("full sync records/s (DuckDB)", _median(s["full_sync"], "records_per_s"), ">=", 40_000, "records/s"),
        _target(
            "incremental 10N / N",
            _median(s["incremental"], "10n_over_n"),
            "<=",
            1.3,
            "ratio",
            s["incremental"].get("reason", ""),
        ),
        _target(
            "peak RSS 10N / N",
            _median(s["peak_rss"], "10n_over_n"),
            "<=",
            1.5,
            "ratio",
            s["peak_rss"].get("reason", ""),
        ),
        _target(
            "Postgres upsert rows/s",
            _median(s["postgres"], "load_path", "upsert_rows_per_s"),
            ">=",
            150_000,
            "rows/s",
            s["postgres"].get("reason", ""),
        ),
        _target(
            "Postgres upsert vs to_sql",
            _median(s["postgres"], "load_path", "upsert_vs_to_sql"),
            ">=",
            2.0,
            "ratio",
            s["postgres"].get("reason", ""),
        ),
        _target("validation share", _median(s["validation"], "share"), "<=", 0.20, "share"),
        _target("CDC apply latency, 10 changes", _median(cdc, "seconds"), "<=", 2.0, "s", cdc.get("reason", "")),
        _target(
            "simulator serving vs pipeline",
            s["simulator_serving"].get("vs_pipeline"),
            ">=",
            2.0,
            "ratio",
            s["simulator_serving"].get("reason", ""),
        ),
    ]
