"""Great Expectations on the Postgres hub: validate in the database, or pull the table into pandas?

Runs the same five column expectations over a synthetic `core.prices` of `--rows` rows (three planted
failures) both ways, each in a subprocess of its own so peak memory is measured per path, and prints
medians. `python -m benchmarks.gx_in_database --rows 1000000` (needs HUB_TEST_POSTGRES_URL or
BENCH_POSTGRES_URL pointing at a server where it may create a scratch database).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

import great_expectations as gx
import pandas as pd
import psycopg
import sqlalchemy.engine
from great_expectations import expectations as gxe

SERVER = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("HUB_TEST_POSTGRES_URL")
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["price_id"]}


def expectations() -> list:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToBeBetween(column="cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=["USD", "EUR", "GBP"]),
        gxe.ExpectColumnValuesToBeUnique(column="price_id"),
        gxe.ExpectColumnValuesToBeBetween(column="fraction_digits", min_value=0, max_value=3),
    ]


def fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE SCHEMA core")
        con.execute(
            "CREATE TABLE core.prices AS SELECT 'p' || g AS price_id, 'sku' || (g %% 50000) AS sku,"
            " (ARRAY['USD', 'EUR', 'GBP'])[1 + g %% 3] AS currency, (g %% 9000) + 100 AS cent_amount,"
            " 2 AS fraction_digits FROM generate_series(1, %s) g",
            [rows],
        )
        con.execute("UPDATE core.prices SET cent_amount = -5 WHERE price_id IN ('p7', 'p70', 'p700')")
        con.execute("ANALYZE core.prices")


def validate_once(url: str, path: str) -> dict:
    """One validation along `path`; what the parent process records."""
    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name="prices", expectations=expectations())
    started = time.perf_counter()
    if path == "pandas":
        with psycopg.connect(url) as con:
            cursor = con.execute("SELECT * FROM core.prices")
            frame = pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description])
        asset = context.data_sources.add_pandas("hub").add_dataframe_asset("prices")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    else:
        source = context.data_sources.add_postgres(
            "hub", connection_string=url.replace("postgresql", "postgresql+psycopg2", 1)
        )
        asset = source.add_table_asset("prices", table_name="prices", schema_name="core")
        batch = asset.add_batch_definition_whole_table("all").get_batch()
    result = batch.validate(suite, result_format=RESULT_FORMAT)
    failing = sorted(k["price_id"] for r in result.results for k in r.result.get("unexpected_index_list") or [])
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "failing_keys": failing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("URL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(validate_once(*args.child)))
        return
    if not SERVER:
        sys.exit("set BENCH_POSTGRES_URL (or HUB_TEST_POSTGRES_URL) to a Postgres server URL")
    server = sqlalchemy.engine.make_url(SERVER)
    database = f"gx_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{database}"')
    url = server.set(database=database).render_as_string(hide_password=False)
    try:
        fill(url, args.rows)
        runs: dict[str, list[dict]] = {"pandas": [], "in-database": []}
        for _ in range(args.repeat):
            for path in runs:  # side by side, alternating
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.gx_in_database", "--child", url, path],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs[path].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        with psycopg.connect(SERVER, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    medians = {
        p: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_rss_mb")} for p, rs in runs.items()
    }
    same = runs["pandas"][0]["failing_keys"] == runs["in-database"][0]["failing_keys"]
    print(f"{args.rows:,} rows, 5 expectations, median of {args.repeat}; same failing keys both ways: {same}")
    for path, m in medians.items():
        print(f"  {path:12} {m['seconds']:6.2f} s   peak RSS {m['peak_rss_mb']:7.0f} MB")
    ratio = medians["pandas"]["seconds"] / medians["in-database"]["seconds"]
    memory = medians["pandas"]["peak_rss_mb"] / medians["in-database"]["peak_rss_mb"]
    print(f"  in-database is {ratio:.2f}x the speed of pandas and uses 1/{memory:.2f} of its memory")


if __name__ == "__main__":
    main()
