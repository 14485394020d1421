"""Nightly supplier feeds: the warehouse system's batch interface, written as CSV files.

``python -m simulators drop-files --dir data/landing/suppliers --date 2026-11-26`` writes one file a
day, ``suppliers_<date>.csv``, holding every supplier's offers (one row per supplier and SKU):

    supplier_id,supplier_sku,sku,unit_cost,currency,min_order_qty,available_to_promise

``unit_cost`` is in major units with two decimals (``12.50``). The SKUs are the catalog's. Costs
move a little from day to day; the same seed, product count, date and bad-row count give the same
bytes. ``bad_rows`` rows are deliberately malformed, one kind after another (see
:data:`BAD_ROW_KINDS`); :class:`FeedFile` tells which lines they are. The file is written under a
temporary name and renamed, so a watcher never sees half a file.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from simulators.warehouse import iter_offers, make_suppliers
from simulators.world import World

HEADER = ("supplier_id", "supplier_sku", "sku", "unit_cost", "currency", "min_order_qty", "available_to_promise")
BAD_ROW_KINDS = ("bad_number", "negative_quantity", "unknown_currency", "missing_sku", "wrong_column_count")
ORDER_MULTIPLES = (1, 6, 12, 24, 48)


@dataclass(frozen=True)
class FeedFile:
    path: Path
    date: str
    rows: int  # data rows, malformed ones included
    bad_rows: dict[int, str] = field(default_factory=dict)  # line number (header is line 1) -> kind

    def summary(self) -> dict:
        return {
            "file": str(self.path),
            "date": self.date,
            "rows": self.rows,
            "bad_rows": [{"line": line, "kind": kind} for line, kind in sorted(self.bad_rows.items())],
        }


def _major(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _malformed(row: list[str], kind: str, rng: random.Random) -> list[str]:
    bad = list(row)
    if kind == "bad_number":
        bad[3] = bad[3].replace(".", ",")  # a decimal comma
    elif kind == "negative_quantity":
        bad[6] = str(-rng.randint(1, 100))
    elif kind == "unknown_currency":
        bad[4] = {"GBP": "GPB", "EUR": "EUROS", "USD": "US$"}[bad[4]]
    elif kind == "missing_sku":
        bad[2] = ""
    else:  # wrong_column_count
        bad = bad[:-1]
    return bad


def supplier_feed_rows(world: World, day: str) -> list[list[str]]:
    """The day's rows, sorted by supplier then SKU."""
    rng = random.Random(f"{world.seed}/feed/{day}")
    rows = []
    for offer in iter_offers(world, make_suppliers(world)):
        cost = max(1, round(offer.base_cost_minor * rng.uniform(0.97, 1.03)))
        available = 0 if rng.random() < 0.05 else rng.randint(1, 5000)
        rows.append(
            [
                offer.supplier_id,
                offer.supplier_sku,
                offer.sku,
                _major(cost),
                offer.currency,
                str(rng.choice(ORDER_MULTIPLES)),
                str(available),
            ]
        )
    rows.sort(key=lambda r: (r[0], r[2]))
    return rows


def write_supplier_feed(directory: str | Path, day: str, world: World, bad_rows: int = 5) -> FeedFile:
    """Write ``suppliers_<day>.csv`` in ``directory`` (created if missing) with ``bad_rows`` malformed rows."""
    try:
        day = date.fromisoformat(day).isoformat()
    except ValueError:
        raise ValueError(f"the date {day!r} is not a YYYY-MM-DD date") from None
    if bad_rows < 0:
        raise ValueError("bad_rows must be >= 0")
    rows = supplier_feed_rows(world, day)
    rng = random.Random(f"{world.seed}/feed/{day}/bad")
    positions = sorted(rng.sample(range(len(rows)), min(bad_rows, len(rows))))
    bad = {}
    for n, index in enumerate(positions):
        kind = BAD_ROW_KINDS[n % len(BAD_ROW_KINDS)]
        rows[index] = _malformed(rows[index], kind, rng)
        bad[index + 2] = kind
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"suppliers_{day}.csv"
    partial = folder / f".{path.name}.partial"
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    os.replace(partial, path)
    return FeedFile(path, day, len(rows), bad)
