"""`python -m benchmarks`: the commerce sync against this machine's limits (issue 9).

Starts the simulator with a sized catalog, runs each scenario `--repeat` times, prints medians with
min/max and every target met or not, and writes the figures to `benchmarks/results/latest.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.report import print_report
from benchmarks.scenarios import SCENARIO_GROUPS, Bench

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=50_000, help="catalog size for the full-sync scenarios")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; figures are medians")
    parser.add_argument(
        "--scaling-products",
        type=int,
        default=None,
        help="N for the N-versus-10N scenarios (incremental, peak memory); default --products / 10",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test"),
        help="a Postgres server where a scratch database may be created (BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--only",
        default=",".join(sorted(SCENARIO_GROUPS)),
        help="comma-separated scenario groups to run after the full sync and raw limit: "
        f"{', '.join(sorted(SCENARIO_GROUPS))} (default all)",
    )
    args = parser.parse_args(argv)
    if args.products < 10 or args.repeat < 1:
        parser.error("--products must be at least 10 and --repeat at least 1")
    only = frozenset(part.strip() for part in args.only.split(",") if part.strip())
    if only - SCENARIO_GROUPS:
        parser.error(f"--only: unknown {sorted(only - SCENARIO_GROUPS)}; choose from {sorted(SCENARIO_GROUPS)}")
    scaling = args.scaling_products or max(args.products // 10, 1)
    results = Bench(args.products, scaling, args.repeat, args.seed, args.postgres_url, only).run()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
