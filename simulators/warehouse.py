"""A warehouse management system (WMS) of our own design, served under ``/warehouse``.

Shaped like a typical 3PL/WMS API (see ``docs/simulators.md``):

* auth by an ``X-Api-Key`` header (a missing or wrong key answers 401 ``unauthorized``, the known
  expired key :data:`EXPIRED_API_KEY` 401 ``api_key_expired``); errors are ``{"error": {"code", "message"}}``;
* ``/v1/warehouses``, ``/v1/stock-levels``, ``/v1/suppliers`` and ``/v1/purchase-orders`` page by an
  opaque cursor over ``(updated_at, id)`` and filter by ``updated_since``; each also answers ``/{id}``;
* ``/v1/stock-movements`` is an append-only feed read with ``?after=<cursor>``.

The world comes from :class:`~simulators.world.World`: the warehouses are the commerce supply
channels (same ids, keys, countries and coordinates), and there is one stock level per commerce
inventory pair (SKU, channel) with the same quantities. Every stock level's ``on_hand`` is the sum of
its movements: the world opens with one ``receipt`` per stocked level, and churn and injection change
stock only through new movements. Suppliers (one manufacturer per brand plus four distributors),
their offers and purchase orders are generated here too; :mod:`simulators.feeds` writes the offers
as the nightly supplier CSV.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from simulators.world import BRANDS, PRODUCT_TYPES, World, format_ms, parse_iso_us, parse_ms, uuid4_str

API_KEY = "wh_test_hub"
#: a key the simulator knows as expired (answers 401 ``api_key_expired``)
EXPIRED_API_KEY = "wh_test_expired_hub"
DAY_MS = 86_400_000
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MOVEMENT_TYPES = ("receipt", "pick", "adjustment", "transfer")
PO_STATUSES = ("draft", "open", "partially_received", "received", "cancelled")
#: bad records planted by ``POST /_admin/inject`` only when asked for by name
INJECT_KINDS = (
    "negative_on_hand",
    "available_above_on_hand",
    "unknown_warehouse_sku",
    "unknown_warehouse",
    "negative_lead_time",
    "negative_unit_cost",
    "unknown_supplier_currency",
)
#: supplier currency by country, and the rate from USD used to price their costs
CURRENCY_BY_COUNTRY = {"US": "USD", "GB": "GBP", "FR": "EUR", "DE": "EUR", "IT": "EUR"}
USD_RATES = {"USD": 1.0, "EUR": 0.93, "GBP": 0.80}
DISTRIBUTORS = (
    ("SUP-D01", "Atlas Beauty Distribution", "US"),
    ("SUP-D02", "Harbor & Vale Wholesale", "GB"),
    ("SUP-D03", "Meridian Beauty Trade", "DE"),
    ("SUP-D04", "Maison Ferrand Diffusion", "FR"),
)
DISTRIBUTOR_SHARE = 0.15  # share of products each distributor carries

Headers = list[tuple[str, str]]
_INT_RE = re.compile(r"^-?\d{1,18}$", re.ASCII)
Reply = tuple[int, bytes, Headers]

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def wh_error(status: int, code: str, message: str, headers: Headers | None = None) -> Reply:
    """A WMS error response: ``{"error": {"code", "message"}}``."""
    return status, orjson.dumps({"error": {"code": code, "message": message}}), list(headers or [])


def _expired_key(headers: Headers | None = None) -> Reply:
    """401 ``api_key_expired``: the key was valid once; the message never repeats it."""
    message = "The API key has expired: create a new key and send it in the X-Api-Key header."
    return wh_error(401, "api_key_expired", message, headers)


class ApiError(Exception):
    """Raised while handling a request; carries a ready error reply."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.reply = wh_error(status, code, message)


# ---------------------------------------------------------------------------------------------------
# suppliers and offers (shared with the CSV feed writer)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Supplier:
    id: str
    name: str
    country: str
    currency: str
    lead_time_days: int
    brand_code: str | None  # manufacturers supply their own brand; distributors carry a share of everything


@dataclass(frozen=True)
class Offer:
    supplier_id: str
    supplier_sku: str
    sku: str
    currency: str
    base_cost_minor: int  # in the supplier's currency


def make_suppliers(world: World) -> list[Supplier]:
    """One manufacturer per brand (``SUP-{brand code}``) and four distributors (``SUP-D01``...)."""
    rng = random.Random(f"{world.seed}/suppliers")
    out: list[Supplier] = []
    for brand in BRANDS:
        country = rng.choice(tuple(CURRENCY_BY_COUNTRY))
        name = f"{brand.name} Laboratories"
        out.append(
            Supplier(f"SUP-{brand.code}", name, country, CURRENCY_BY_COUNTRY[country], rng.randint(7, 45), brand.code)
        )
    for sid, name, country in DISTRIBUTORS:
        out.append(Supplier(sid, name, country, CURRENCY_BY_COUNTRY[country], rng.randint(2, 14), None))
    return out


def iter_offers(world: World, suppliers: Sequence[Supplier]) -> Iterator[Offer]:
    """Every supplier offer, in product order: the brand's manufacturer offers all of a product's
    SKUs; each distributor carries about 15% of the products, all their SKUs."""
    rng = random.Random(f"{world.seed}/offers")
    makers = {s.brand_code: s for s in suppliers if s.brand_code}
    distributors = [s for s in suppliers if s.brand_code is None]
    counters = {s.id: 0 for s in distributors}
    for number in range(1, world.products + 1):
        lo, hi = PRODUCT_TYPES[world.plan_type[number - 1]].price_range
        retail_usd_cents = rng.randint(lo * 100, hi * 100)
        brand = BRANDS[world.plan_brand[number - 1]]
        carriers = [makers[brand.code], *(d for d in distributors if rng.random() < DISTRIBUTOR_SHARE)]
        for sku in world.product_skus(number):
            for supplier in carriers:
                share = 0.28 if supplier.brand_code else 0.36
                cost = max(1, round(retail_usd_cents * share * USD_RATES[supplier.currency]))
                if supplier.brand_code:
                    supplier_sku = sku.replace("-", "")
                else:
                    counters[supplier.id] += 1
                    supplier_sku = f"{supplier.id[-3:]}-{counters[supplier.id]:07d}"
                yield Offer(supplier.id, supplier_sku, sku, supplier.currency, cost)


# ---------------------------------------------------------------------------------------------------
# records and listings
# ---------------------------------------------------------------------------------------------------


class StockLevel:
    """Stock of one SKU in one warehouse; ``available`` is ``on_hand - allocated``."""

    __slots__ = ("allocated", "id", "on_hand", "sku", "updated_ms", "version", "warehouse_id")

    def __init__(self, ident: str, sku: str, warehouse_id: str, on_hand: int, allocated: int, version: int, ms: int):
        self.id, self.sku, self.warehouse_id = ident, sku, warehouse_id
        self.on_hand, self.allocated, self.version, self.updated_ms = on_hand, allocated, version, ms

    def bump(self, ms: int) -> None:
        self.version += 1
        self.updated_ms = ms

    def doc(self) -> dict:
        return {
            "id": self.id,
            "sku": self.sku,
            "warehouse_id": self.warehouse_id,
            "on_hand": self.on_hand,
            "allocated": self.allocated,
            "available": self.on_hand - self.allocated,
            "version": self.version,
            "updated_at": format_ms(self.updated_ms),
        }


class DocRecord:
    """A small record kept as its JSON document (warehouses, suppliers, purchase orders)."""

    __slots__ = ("body", "id", "updated_ms")

    def __init__(self, body: dict) -> None:
        self.body = body
        self.id = body["id"]
        self.updated_ms = parse_ms(body["updated_at"])

    def bump(self, ms: int) -> None:
        self.body["version"] += 1
        self.body["updated_at"] = format_ms(ms)
        self.updated_ms = ms

    def doc(self) -> dict:
        return self.body


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, resource: str) -> list:
    """The parts of a cursor this API issued for ``resource`` (without the resource name)."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        parts = None
    if not isinstance(parts, list) or not parts or parts[0] != resource:
        raise ApiError(400, "invalid_cursor", f"The cursor is not one this API issued for {resource}.")
    return parts[1:]


class Listing:
    """Records of one list endpoint, ordered by ``(updated_at, id)`` for cursor paging."""

    def __init__(self, resource: str, records: Sequence[Any]) -> None:
        self.resource = resource
        self.by_id = {r.id: r for r in records}
        self.recs = sorted(records, key=lambda r: (r.updated_ms, r.id))
        self.keys = [(r.updated_ms, r.id) for r in self.recs]

    def __len__(self) -> int:
        return len(self.recs)

    def add(self, rec: Any) -> None:
        if rec.id in self.by_id:
            raise ValueError(f"duplicate id {rec.id}")
        self.by_id[rec.id] = rec
        key = (rec.updated_ms, rec.id)
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.recs.insert(i, rec)

    def touch(self, recs: Sequence[Any], ms: int) -> None:
        """Bump each record's version and move it to ``updated_at = ms``."""
        for rec in dict.fromkeys(recs):
            i = bisect_left(self.keys, (rec.updated_ms, rec.id))
            del self.keys[i]
            del self.recs[i]
            rec.bump(ms)
            key = (rec.updated_ms, rec.id)
            j = bisect_right(self.keys, key)
            self.keys.insert(j, key)
            self.recs.insert(j, rec)

    def page(self, query: dict[str, list[str]]) -> bytes:
        limit = int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        start = 0
        since = last(query, "updated_since")
        if since is not None:
            try:
                since_ms = -(-parse_iso_us(since) // 1000)  # ceiling: a record at since itself is included
            except ValueError:
                raise ApiError(
                    400, "invalid_parameter", f"updated_since must be an ISO-8601 timestamp, got '{since}'."
                ) from None
            start = bisect_left(self.keys, (since_ms,))
        cursor = last(query, "cursor")
        if cursor:
            parts = decode_cursor(cursor, self.resource)
            if len(parts) != 2 or not isinstance(parts[0], int) or not isinstance(parts[1], str):
                raise ApiError(400, "invalid_cursor", f"The cursor is not one this API issued for {self.resource}.")
            start = max(start, bisect_right(self.keys, (parts[0], parts[1])))
        page = self.recs[start : start + limit]
        more = start + limit < len(self.recs)
        next_cursor = encode_cursor(self.resource, page[-1].updated_ms, page[-1].id) if page and more else None
        return orjson.dumps({"data": [r.doc() for r in page], "next_cursor": next_cursor})


def last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def int_param(query: dict[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    raw = last(query, name)
    if raw is None:
        return default
    text = raw.strip()
    if not _INT_RE.match(text) or not lo <= int(text) <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer between {lo} and {hi}, got '{raw}'.")
    return int(text)


# ---------------------------------------------------------------------------------------------------
# the store (world state for the warehouse system)
# ---------------------------------------------------------------------------------------------------


class WarehouseStore:
    """Warehouses, stock levels, the movement feed, suppliers and purchase orders of one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.suppliers_list = make_suppliers(world)
        self.warehouses = Listing("warehouses", [DocRecord(d) for d in self._warehouse_docs()])
        levels = self._stock_levels()
        self.stock_levels = Listing("stock-levels", levels)
        self.levels_by_sku: dict[str, list[StockLevel]] = {}
        for r in levels:
            self.levels_by_sku.setdefault(r.sku, []).append(r)
        # the feed opens with one receipt per stocked level, kept compact (level, quantity, time);
        # later movements are (type, sku, warehouse_id, quantity, reference, occurred_ms) tuples
        self.opening = sorted((r for r in levels if r.on_hand > 0), key=lambda r: (r.updated_ms, r.id))
        self.opening_quantities = array("q", (r.on_hand for r in self.opening))
        self.opening_ms = array("q", (r.updated_ms for r in self.opening))
        self.movements: list[tuple[str, str, str, int, str, int]] = []
        self.suppliers = Listing("suppliers", [DocRecord(d) for d in self._supplier_docs()])
        self.purchase_orders = Listing("purchase-orders", [DocRecord(d) for d in self._purchase_order_docs()])
        self.listings = {
            x.resource: x for x in (self.warehouses, self.stock_levels, self.suppliers, self.purchase_orders)
        }
        self._rng = random.Random(f"{world.seed}/warehouse-changes")
        self._next_level = len(levels) + 1

    # -- generation ----------------------------------------------------------------------------
    def _warehouse_docs(self) -> Iterator[dict]:
        rng = random.Random(f"{self.world.seed}/warehouses")
        for channel in self.world.iter_channels():
            longitude, latitude = channel["geoLocation"]["coordinates"]
            store = channel["key"].startswith("store-")
            yield {
                "id": channel["id"],
                "code": channel["key"],
                "name": channel["name"]["en-US"],
                "country": channel["address"]["country"],
                "city": channel["address"]["city"],
                "latitude": latitude,
                "longitude": longitude,
                "capacity_units": rng.randrange(4_000, 20_000, 500) if store else rng.randrange(80_000, 400_000, 5_000),
                "version": channel["version"],
                "created_at": channel["createdAt"],
                "updated_at": channel["lastModifiedAt"],
            }

    def _stock_levels(self) -> list[StockLevel]:
        levels = []
        for number, entry in enumerate(self.world.iter_inventory(), start=1):
            on_hand = entry["quantityOnStock"]
            levels.append(
                StockLevel(
                    f"SL-{number:08d}",
                    entry["sku"],
                    entry["supplyChannel"]["id"],
                    on_hand,
                    on_hand - entry["availableQuantity"],
                    entry["version"],
                    parse_ms(entry["lastModifiedAt"]),
                )
            )
        return levels

    def _supplier_docs(self) -> Iterator[dict]:
        times = self.world.catalog_times
        for i, s in enumerate(self.suppliers_list):
            created = times[i % len(times)]
            yield {
                "id": s.id,
                "name": s.name,
                "country": s.country,
                "lead_time_days": s.lead_time_days,
                "currency": s.currency,
                "version": 1 + i % 3,
                "created_at": format_ms(created),
                "updated_at": format_ms(created + (i % 3) * DAY_MS),
            }

    def _purchase_order_docs(self) -> Iterator[dict]:
        world = self.world
        if world.products == 0:
            return
        rng = random.Random(f"{world.seed}/purchase-orders")
        offers: dict[str, list[Offer]] = {}
        for offer in iter_offers(world, self.suppliers_list):
            offers.setdefault(offer.supplier_id, []).append(offer)
        suppliers = [s for s in self.suppliers_list if offers.get(s.id)]
        warehouse_ids = list(self.warehouses.by_id)
        pool, ceiling = world.inventory_time_pool, world.max_initial_ms
        for number in range(1, max(12, world.products // 5) + 1):
            supplier = rng.choice(suppliers)
            status = rng.choices(PO_STATUSES, weights=(10, 35, 20, 30, 5))[0]
            created = pool[rng.randrange(len(pool))]
            updated = min(ceiling, created + rng.randrange(0, 20 * DAY_MS)) if status != "draft" else created
            picked = rng.sample(offers[supplier.id], min(rng.randint(1, 6), len(offers[supplier.id])))
            lines = []
            for line_id, offer in enumerate(picked, start=1):
                ordered = rng.randint(2, 100) * 6
                received = {"received": ordered, "partially_received": rng.randint(0, ordered)}.get(status, 0)
                lines.append(
                    {
                        "line_id": line_id,
                        "sku": offer.sku,
                        "quantity_ordered": ordered,
                        "quantity_received": received,
                        "unit_cost_minor": offer.base_cost_minor,
                        "currency": offer.currency,
                    }
                )
            if status == "partially_received" and all(
                x["quantity_received"] in (0, x["quantity_ordered"]) for x in lines
            ):
                lines[0]["quantity_received"] = lines[0]["quantity_ordered"] // 2
            yield {
                "id": f"PO-{number:06d}",
                "supplier_id": supplier.id,
                "warehouse_id": rng.choice(warehouse_ids),
                "status": status,
                "expected_at": format_ms(created + supplier.lead_time_days * DAY_MS),
                "created_at": format_ms(created),
                "updated_at": format_ms(updated),
                "version": 1 + PO_STATUSES.index(status) if status != "cancelled" else 2,
                "lines": lines,
            }

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "warehouses": len(self.warehouses),
            "stock_levels": len(self.stock_levels),
            "stock_movements": self.last_sequence,
            "last_sequence": self.last_sequence,
            "skus": len(self.levels_by_sku),
            "suppliers": len(self.suppliers),
            "purchase_orders": len(self.purchase_orders),
            "purchase_order_lines": sum(len(r.body["lines"]) for r in self.purchase_orders.recs),
        }

    # -- movements -----------------------------------------------------------------------------
    @staticmethod
    def movement_id(sequence: int) -> str:
        return f"MV-{sequence:010d}"

    @property
    def last_sequence(self) -> int:
        return len(self.opening) + len(self.movements)

    def movement_doc(self, sequence: int) -> dict:
        i = sequence - 1
        if i < len(self.opening):
            level = self.opening[i]
            kind, sku, warehouse_id = "receipt", level.sku, level.warehouse_id
            quantity, reference, ms = self.opening_quantities[i], "opening-balance", self.opening_ms[i]
        else:
            kind, sku, warehouse_id, quantity, reference, ms = self.movements[i - len(self.opening)]
        return {
            "id": self.movement_id(sequence),
            "sequence": sequence,
            "type": kind,
            "sku": sku,
            "warehouse_id": warehouse_id,
            "quantity": quantity,
            "reference": reference,
            "occurred_at": format_ms(ms),
        }

    def _move(self, level: StockLevel, kind: str, quantity: int, reference: str, ms: int) -> str:
        """Append a movement and apply it to ``level`` (allocations never exceed what is on hand)."""
        self.movements.append((kind, level.sku, level.warehouse_id, quantity, reference, ms))
        if kind == "pick":
            level.allocated -= min(level.allocated, -quantity)
        level.on_hand += quantity
        level.allocated = max(0, min(level.allocated, level.on_hand))
        return self.movement_id(self.last_sequence)

    def feed_page(self, query: dict[str, list[str]]) -> bytes:
        limit = int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        after = last(query, "after")
        start = 0
        if after:
            parts = decode_cursor(after, "stock-movements")
            if len(parts) != 1 or not isinstance(parts[0], int) or not 0 <= parts[0] <= self.last_sequence:
                raise ApiError(400, "invalid_cursor", "The cursor is not one this API issued for stock-movements.")
            start = parts[0]
        end = min(start + limit, self.last_sequence)
        data = [self.movement_doc(seq) for seq in range(start + 1, end + 1)]
        next_cursor = encode_cursor("stock-movements", end) if data else (after or None)
        return orjson.dumps({"data": data, "next_cursor": next_cursor})

    # -- churn ---------------------------------------------------------------------------------
    def churn(self, n_movements: int, ts: int, seed: int | None = None) -> dict:
        """Append ``n_movements`` movements (receipts, picks, adjustments, transfer pairs) and apply
        them to their stock levels (version + 1, ``updated_at`` = ``ts``)."""
        rng = random.Random(seed) if seed is not None else self._rng
        levels = self.stock_levels.recs
        first = self.last_sequence + 1
        touched: list[StockLevel] = []
        if not levels:
            n_movements = 0
        remaining = n_movements
        while remaining > 0:
            level = levels[rng.randrange(len(levels))]
            kind = rng.choices(MOVEMENT_TYPES, weights=(30, 40, 15, 15))[0]
            siblings = [r for r in self.levels_by_sku.get(level.sku, ()) if r is not level]
            if (kind in ("pick", "transfer") and level.on_hand <= 0) or (
                kind == "transfer" and (remaining < 2 or not siblings)
            ):
                kind = "receipt"
            reference = f"CHURN-{first:010d}-{n_movements - remaining + 1}"
            if kind == "receipt":
                self._move(level, kind, rng.randint(1, 40) * 6, reference, ts)
            elif kind == "pick":
                self._move(level, kind, -rng.randint(1, min(level.on_hand, 10)), reference, ts)
            elif kind == "adjustment":
                delta = rng.choice([d for d in range(-min(max(level.on_hand, 0), 5), 6) if d])
                self._move(level, kind, delta, reference, ts)
            else:
                target = siblings[rng.randrange(len(siblings))]
                quantity = rng.randint(1, min(level.on_hand, 20))
                self._move(level, kind, -quantity, reference, ts)
                self._move(target, kind, quantity, reference, ts)
                touched.append(target)
                remaining -= 1
            touched.append(level)
            remaining -= 1
        self.stock_levels.touch(touched, ts)
        return {
            "stock_movements": [self.movement_id(s) for s in range(first, self.last_sequence + 1)],
            "stock_levels": sorted({r.id for r in touched}),
            "updated_at": format_ms(ts),
        }

    # -- bad records ---------------------------------------------------------------------------
    def _new_level(self, sku: str, warehouse_id: str, quantity: int, ts: int) -> tuple[StockLevel, str]:
        level = StockLevel(f"SL-{self._next_level:08d}", sku, warehouse_id, 0, 0, 1, ts)
        self._next_level += 1
        movement = self._move(level, "receipt", quantity, "INJECTED", ts)
        self.stock_levels.add(level)
        self.levels_by_sku.setdefault(sku, []).append(level)
        return level, movement

    def _free_orphan_sku(self) -> str:
        for number in range(999_999, 0, -1):
            for variant in range(99, 0, -1):
                sku = f"ZZZ-{number:06d}-{variant:02d}"
                if sku not in self.levels_by_sku:
                    return sku
        raise ValueError("no free orphan sku")  # pragma: no cover

    def inject(self, kinds: Sequence[str], ts: int, seed: int | None = None) -> dict:
        rng = random.Random(seed) if seed is not None else self._rng
        levels = [r for r in self.stock_levels.recs if r.on_hand >= 0]
        if any(k in kinds for k in INJECT_KINDS[:4]) and (not levels or not self.warehouses.recs):
            raise ValueError("the world has no stock levels to plant bad records in")
        picked = rng.sample(levels, min(len(levels), 2))
        suppliers = rng.sample(self.suppliers.recs, 2)
        out: dict[str, dict] = {}
        for kind in kinds:
            if kind == "negative_on_hand":
                level = picked[0]
                movement = self._move(level, "adjustment", -(level.on_hand + rng.randint(1, 50)), "INJECTED", ts)
                self.stock_levels.touch([level], ts)
                out[kind] = {"stock_level_id": level.id, "sku": level.sku, "movement_id": movement}
            elif kind == "available_above_on_hand":
                level = picked[-1]
                level.allocated = -rng.randint(1, 50)
                self.stock_levels.touch([level], ts)
                out[kind] = {"stock_level_id": level.id, "sku": level.sku}
            elif kind == "unknown_warehouse_sku":
                warehouse = self.warehouses.recs[rng.randrange(len(self.warehouses))]
                level, movement = self._new_level(self._free_orphan_sku(), warehouse.id, rng.randint(1, 100), ts)
                out[kind] = {"stock_level_id": level.id, "sku": level.sku, "movement_id": movement}
            elif kind == "unknown_warehouse":
                sku = picked[0].sku
                warehouse_id = uuid4_str(rng)
                level, movement = self._new_level(sku, warehouse_id, rng.randint(1, 100), ts)
                out[kind] = {"stock_level_id": level.id, "warehouse_id": warehouse_id, "movement_id": movement}
            elif kind == "negative_lead_time":
                supplier = suppliers[0]
                supplier.body["lead_time_days"] = -rng.randint(1, 10)
                self.suppliers.touch([supplier], ts)
                out[kind] = {"supplier_id": supplier.id}
            elif kind == "unknown_supplier_currency":
                supplier = suppliers[1]
                supplier.body["currency"] = "ZZZ"
                self.suppliers.touch([supplier], ts)
                out[kind] = {"supplier_id": supplier.id}
            elif kind == "negative_unit_cost":
                if not self.purchase_orders.recs:
                    raise ValueError("the world has no purchase orders to plant bad records in")
                order = self.purchase_orders.recs[rng.randrange(len(self.purchase_orders))]
                line = order.body["lines"][0]
                line["unit_cost_minor"] = -max(1, line["unit_cost_minor"])
                self.purchase_orders.touch([order], ts)
                out[kind] = {"purchase_order_id": order.id, "line_id": line["line_id"]}
            else:  # pragma: no cover - validated by the caller
                raise ValueError(f"unknown kind {kind!r}")
        return out


# ---------------------------------------------------------------------------------------------------
# HTTP-facing system
# ---------------------------------------------------------------------------------------------------


class WarehouseSystem:
    """Serves ``/warehouse``: the WMS API, authenticated by the ``X-Api-Key`` header."""

    prefix = "/warehouse"
    name = "warehouse"

    def __init__(self, world: World, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.store = WarehouseStore(world)

    # -- world lifecycle -----------------------------------------------------------------------
    @staticmethod
    def build_state(world: World) -> WarehouseStore:
        return WarehouseStore(world)

    def swap_state(self, state: WarehouseStore) -> WarehouseStore:
        old, self.store = self.store, state
        return old

    def stats(self) -> dict:
        return self.store.stats()

    @staticmethod
    def fault_reply(status: int, headers: Headers) -> Reply:
        if status == 401:  # an `expire_token` fault: the key in use has just expired
            return _expired_key(headers)
        return wh_error(status, _STATUS_CODES.get(status, "error"), f"Injected fault: HTTP {status}.", headers)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, req) -> Reply:
        key = req.headers.get("X-Api-Key") or ""
        if secrets.compare_digest(key.encode(), EXPIRED_API_KEY.encode()):
            return _expired_key()
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            return wh_error(
                401, "unauthorized", "Missing or invalid API key: send a valid key in the X-Api-Key header."
            )
        if req.method not in ("GET", "HEAD"):
            return wh_error(
                405,
                "method_not_allowed",
                f"Method {req.method} is not allowed: the API is read-only.",
                [("Allow", "GET")],
            )
        segments = [unquote(s) for s in req.path.split("/") if s]
        if len(segments) not in (2, 3) or segments[0] != "v1":
            return wh_error(404, "not_found", f"No such endpoint: /warehouse{req.path}.")
        store, resource = self.store, segments[1]
        try:
            if resource == "stock-movements" and len(segments) == 2:
                return 200, store.feed_page(req.query), []
            listing = store.listings.get(resource)
            if listing is None:
                return wh_error(404, "not_found", f"No such endpoint: /warehouse{req.path}.")
            if len(segments) == 3:
                rec = listing.by_id.get(segments[2])
                if rec is None:
                    return wh_error(404, "not_found", f"No {resource} record with id '{segments[2]}'.")
                return 200, orjson.dumps(rec.doc()), []
            return 200, listing.page(req.query), []
        except ApiError as exc:
            return exc.reply
