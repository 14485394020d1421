"""commercetools-compatible commerce API, served under ``/commerce``.

Layers in this module:

* records: compact ``__slots__`` objects holding the facts the query engine needs plus the cached
  orjson bytes of the document (the bytes are the source of truth; a change loads them, edits the
  dict, and re-serializes, which refreshes the facts and the cache together);
* :class:`Collection`: records plus indexes (id-sorted list, ``(lastModifiedAt, id)`` and
  ``(createdAt, id)`` sorted lists, hash indexes for ``key``/``sku``) and the query planner;
* :class:`CommerceStore`: the five collections built from a :class:`~simulators.world.World`, stats,
  churn and bad-record injection;
* :class:`TokenStore`: OAuth client-credentials tokens;
* :class:`CommerceSystem`: the HTTP-facing handler (``handle(request) -> (status, body, headers)``).
"""

from __future__ import annotations

import base64
import gc
import random
import re
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from simulators import messages as M
from simulators import predicates as P
from simulators.world import (
    ADJECTIVES,
    BRANDS,
    PRODUCT_TYPES,
    SHIPMENT_STATES,
    World,
    format_ms,
    order_book,
    parse_ms,
    price_order_totals,
    product_name,
    round_price,
    uuid4_str,
)

JSON = "application/json; charset=utf-8"
MAX_LIMIT = 500
MAX_OFFSET = 10_000
TOTAL_CAP = 10_000
DEFAULT_LIMIT = 20

Headers = list[tuple[str, str]]
Reply = tuple[int, bytes, Headers]

# ---------------------------------------------------------------------------------------------------
# error bodies
# ---------------------------------------------------------------------------------------------------


def ct_error(status: int, code: str, message: str, headers: Headers | None = None, **extra: Any) -> Reply:
    """A commercetools error response: ``{statusCode, message, errors:[{code, message}], ...extra}``."""
    body = {"statusCode": status, "message": message, "errors": [{"code": code, "message": message}]}
    body.update(extra)
    return status, orjson.dumps(body), list(headers or [])


def invalid_input(message: str) -> Reply:
    return ct_error(400, "InvalidInput", message)


def not_found(message: str) -> Reply:
    return ct_error(404, "ResourceNotFound", message)


def auth_error(status: int, error: str, description: str, message: str | None = None) -> Reply:
    body = {
        "statusCode": status,
        "message": message or description,
        "errors": [{"code": error, "message": description}],
        "error": error,
        "error_description": description,
    }
    headers: Headers = []
    if error == "invalid_token":
        headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
    return status, orjson.dumps(body), headers


class QueryError(Exception):
    """Raised while validating query parameters; carries a ready 400 reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reply = invalid_input(message)


# ---------------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------------


class Record:
    """Base record: common facts plus the cached serialized document."""

    __slots__ = ("body", "created_ms", "id", "key", "modified_ms", "version")

    def __init__(self, doc: dict) -> None:
        self.apply(doc)

    def apply(self, doc: dict) -> None:
        """Take ``doc`` as the new document: refresh facts and the cached bytes."""
        self.id = doc["id"]
        self.key = doc.get("key")
        self.version = doc["version"]
        self.created_ms = parse_ms(doc["createdAt"])
        self.modified_ms = parse_ms(doc["lastModifiedAt"])
        # copy: orjson's result keeps a ~4 KiB buffer; the copy is exact-size (big memory win)
        self.body = bytes(memoryview(orjson.dumps(doc)))

    def load(self) -> dict:
        return orjson.loads(self.body)


class ProductRecord(Record):
    __slots__ = ("category_ids", "n_prices", "product_type_id", "skus", "variants")

    def apply(self, doc: dict) -> None:
        variants = [doc["masterVariant"], *doc.get("variants", ())]
        self.variants = tuple((v["id"], v.get("sku"), v.get("key")) for v in variants)
        self.skus = tuple(v[1] for v in self.variants if v[1] is not None)
        self.n_prices = sum(len(v.get("prices", ())) for v in variants)
        self.product_type_id = doc["productType"]["id"]
        self.category_ids = tuple(c["id"] for c in doc.get("categories", ()))
        Record.apply(self, doc)


class InventoryRecord(Record):
    __slots__ = (
        "available_quantity",
        "channel_id",
        "expected_delivery_ms",
        "quantity_on_stock",
        "restockable_in_days",
        "sku",
    )

    def apply(self, doc: dict) -> None:
        self.sku = doc["sku"]
        ch = doc.get("supplyChannel")
        self.channel_id = ch["id"] if ch else None
        self.quantity_on_stock = doc["quantityOnStock"]
        self.available_quantity = doc["availableQuantity"]
        self.restockable_in_days = doc.get("restockableInDays")
        ed = doc.get("expectedDelivery")
        self.expected_delivery_ms = parse_ms(ed) if ed else None
        Record.apply(self, doc)


class ChannelRecord(Record):
    __slots__ = ("roles",)

    def apply(self, doc: dict) -> None:
        self.roles = tuple(doc.get("roles", ()))
        Record.apply(self, doc)


class CategoryRecord(Record):
    __slots__ = ("parent_id",)

    def apply(self, doc: dict) -> None:
        parent = doc.get("parent")
        self.parent_id = parent["id"] if parent else None
        Record.apply(self, doc)


class OrderRecord(Record):
    __slots__ = (
        "country",
        "customer_email",
        "customer_id",
        "order_number",
        "order_state",
        "payment_state",
        "shipment_state",
        "skus",
        "total_cents",
    )

    def apply(self, doc: dict) -> None:
        self.order_number = doc.get("orderNumber")
        self.customer_id = doc.get("customerId")
        self.customer_email = doc.get("customerEmail")
        self.order_state = doc["orderState"]
        self.payment_state = doc.get("paymentState")
        self.shipment_state = doc.get("shipmentState")
        self.country = doc.get("country")
        self.skus = tuple(line["variant"].get("sku") for line in doc["lineItems"])
        self.total_cents = doc["totalPrice"]["centAmount"]
        Record.apply(self, doc)


class MessageRecord(Record):
    __slots__ = ("resource_id", "resource_type_id", "resource_version", "sequence_number", "type")

    def apply(self, doc: dict) -> None:
        self.type = doc["type"]
        self.sequence_number = doc["sequenceNumber"]
        self.resource_version = doc["resourceVersion"]
        self.resource_id = doc["resource"]["id"]
        self.resource_type_id = doc["resource"]["typeId"]
        Record.apply(self, doc)


class CustomerRecord(Record):
    __slots__ = ("country", "email", "first_name", "last_name")

    def apply(self, doc: dict) -> None:
        self.email = doc.get("email")
        self.first_name = doc.get("firstName")
        self.last_name = doc.get("lastName")
        addresses = doc.get("addresses") or [{}]
        self.country = addresses[0].get("country")
        Record.apply(self, doc)


# ---------------------------------------------------------------------------------------------------
# schemas (fields usable in where and sort)
# ---------------------------------------------------------------------------------------------------


def _common_fields() -> dict[str, P.FieldSpec]:
    return {
        "id": P.FieldSpec("id", "string", attrgetter("id")),
        "key": P.FieldSpec("key", "string", attrgetter("key"), nullable=True),
        "version": P.FieldSpec("version", "number", attrgetter("version")),
        "createdAt": P.FieldSpec("createdAt", "datetime", attrgetter("created_ms")),
        "lastModifiedAt": P.FieldSpec("lastModifiedAt", "datetime", attrgetter("modified_ms")),
    }


def _ref_schema(type_id: str) -> P.Schema:
    """Schema of a reference ``{typeId, id}`` whose nested object is the referenced id string."""
    return P.Schema(
        f"{type_id} reference",
        {
            "id": P.FieldSpec("id", "string", lambda x: x),
            "typeId": P.FieldSpec("typeId", "string", lambda _x: type_id),
        },
    )


_VARIANT_SCHEMA = P.Schema(
    "product variant",
    {
        "id": P.FieldSpec("id", "number", lambda v: v[0]),
        "sku": P.FieldSpec("sku", "string", lambda v: v[1], nullable=True),
        "key": P.FieldSpec("key", "string", lambda v: v[2], nullable=True),
    },
)


def _product_schema() -> P.Schema:
    f = _common_fields()
    f["sku"] = P.FieldSpec("sku", "string", attrgetter("skus"), multi=True, sortable=False)
    f["masterVariant"] = P.FieldSpec(
        "masterVariant", "nested", lambda r: r.variants[:1], sortable=False, schema=_VARIANT_SCHEMA
    )
    f["variants"] = P.FieldSpec("variants", "nested", lambda r: r.variants[1:], sortable=False, schema=_VARIANT_SCHEMA)
    f["allVariants"] = P.FieldSpec(
        "allVariants", "nested", attrgetter("variants"), sortable=False, schema=_VARIANT_SCHEMA
    )
    f["productType"] = P.FieldSpec(
        "productType", "nested", lambda r: (r.product_type_id,), sortable=False, schema=_ref_schema("product-type")
    )
    f["categories"] = P.FieldSpec(
        "categories", "nested", attrgetter("category_ids"), sortable=False, schema=_ref_schema("category")
    )
    f["published"] = P.FieldSpec("published", "boolean", lambda _r: True)
    f["hasStagedChanges"] = P.FieldSpec("hasStagedChanges", "boolean", lambda _r: False)
    return P.Schema("product-projection", f)


def _inventory_schema() -> P.Schema:
    f = _common_fields()
    f["sku"] = P.FieldSpec("sku", "string", attrgetter("sku"))
    f["quantityOnStock"] = P.FieldSpec("quantityOnStock", "number", attrgetter("quantity_on_stock"))
    f["availableQuantity"] = P.FieldSpec("availableQuantity", "number", attrgetter("available_quantity"))
    f["restockableInDays"] = P.FieldSpec(
        "restockableInDays", "number", attrgetter("restockable_in_days"), nullable=True
    )
    f["expectedDelivery"] = P.FieldSpec(
        "expectedDelivery", "datetime", attrgetter("expected_delivery_ms"), nullable=True
    )
    f["supplyChannel"] = P.FieldSpec(
        "supplyChannel",
        "nested",
        lambda r: (r.channel_id,) if r.channel_id is not None else (),
        sortable=False,
        schema=_ref_schema("channel"),
    )
    return P.Schema("inventory-entry", f)


def _channel_schema() -> P.Schema:
    f = _common_fields()
    f["roles"] = P.FieldSpec("roles", "string", attrgetter("roles"), multi=True, sortable=False)
    return P.Schema("channel", f)


def _category_schema() -> P.Schema:
    f = _common_fields()
    f["parent"] = P.FieldSpec(
        "parent",
        "nested",
        lambda r: (r.parent_id,) if r.parent_id is not None else (),
        sortable=False,
        schema=_ref_schema("category"),
    )
    return P.Schema("category", f)


def _product_type_schema() -> P.Schema:
    return P.Schema("product-type", _common_fields())


def _order_schema() -> P.Schema:
    f = _common_fields()
    for name, attr in (
        ("orderNumber", "order_number"),
        ("customerId", "customer_id"),
        ("customerEmail", "customer_email"),
        ("paymentState", "payment_state"),
        ("shipmentState", "shipment_state"),
        ("country", "country"),
    ):
        f[name] = P.FieldSpec(name, "string", attrgetter(attr), nullable=True)
    f["orderState"] = P.FieldSpec("orderState", "string", attrgetter("order_state"))
    f["totalPrice"] = P.FieldSpec(
        "totalPrice",
        "nested",
        lambda r: (r.total_cents,),
        sortable=False,
        schema=P.Schema("money", {"centAmount": P.FieldSpec("centAmount", "number", lambda x: x)}),
    )
    f["lineItems"] = P.FieldSpec(
        "lineItems",
        "nested",
        attrgetter("skus"),
        sortable=False,
        schema=P.Schema("line item", {"sku": P.FieldSpec("sku", "string", lambda x: x, nullable=True)}),
    )
    return P.Schema("order", f)


def _message_schema() -> P.Schema:
    f = {k: v for k, v in _common_fields().items() if k != "key"}
    f["sequenceNumber"] = P.FieldSpec("sequenceNumber", "number", attrgetter("sequence_number"))
    f["resourceVersion"] = P.FieldSpec("resourceVersion", "number", attrgetter("resource_version"))
    f["type"] = P.FieldSpec("type", "string", attrgetter("type"))
    f["resource"] = P.FieldSpec(
        "resource",
        "nested",
        lambda r: ((r.resource_type_id, r.resource_id),),
        sortable=False,
        schema=P.Schema(
            "reference",
            {
                "id": P.FieldSpec("id", "string", lambda ref: ref[1]),
                "typeId": P.FieldSpec("typeId", "string", lambda ref: ref[0]),
            },
        ),
    )
    return P.Schema("message", f)


def _customer_schema() -> P.Schema:
    f = _common_fields()
    f["email"] = P.FieldSpec("email", "string", attrgetter("email"), nullable=True)
    f["firstName"] = P.FieldSpec("firstName", "string", attrgetter("first_name"), nullable=True)
    f["lastName"] = P.FieldSpec("lastName", "string", attrgetter("last_name"), nullable=True)
    f["country"] = P.FieldSpec("country", "string", attrgetter("country"), nullable=True)
    return P.Schema("customer", f)


# ---------------------------------------------------------------------------------------------------
# collection: records, indexes, query planner
# ---------------------------------------------------------------------------------------------------

_TIME_ATTRS = {"lastModifiedAt": "modified_ms", "createdAt": "created_ms"}
_TIME_FIELDS = {name: attrgetter(attr) for name, attr in _TIME_ATTRS.items()}
_CHUNK = 512


def _iter_range(recs: list, start: int, end: int, desc: bool) -> Iterator:
    """Records ``recs[start:end]`` (reversed when ``desc``), sliced in chunks (no full copy)."""
    if not desc:
        for c in range(start, end, _CHUNK):
            yield from recs[c : min(c + _CHUNK, end)]
    else:
        for c in range(end, start, -_CHUNK):
            chunk = recs[max(start, c - _CHUNK) : c]
            chunk.reverse()
            yield from chunk


def _remove_sorted(keys: list, recs: list, doomed: list) -> None:
    """Remove the given keys from the parallel sorted lists ``keys``/``recs``."""
    if len(doomed) <= 32:
        for k in doomed:
            i = bisect_left(keys, k)
            if i < len(keys) and keys[i] == k:
                del keys[i]
                del recs[i]
        return
    gone = set(doomed)
    kept = [(k, r) for k, r in zip(keys, recs, strict=True) if k not in gone]
    keys[:] = [k for k, _ in kept]
    recs[:] = [r for _, r in kept]


class Collection:
    """One resource type: records and the indexes that make paging cheap."""

    def __init__(
        self, resource: str, schema: P.Schema, record_cls: type[Record], hash_fields: Sequence[str] = ("key",)
    ) -> None:
        self.resource = resource
        self.schema = schema
        self.record_cls = record_cls
        self.by_id: dict[str, Record] = {}
        self.ids: list[str] = []  # sorted ids
        self.id_recs: list[Record] = []  # records in id order (parallel to ids)
        self.time_keys: dict[str, list[tuple[int, str]]] = {f: [] for f in _TIME_FIELDS}
        self.time_recs: dict[str, list[Record]] = {f: [] for f in _TIME_FIELDS}
        self.hash_fields = tuple(hash_fields)
        self.hash_idx: dict[str, dict[Any, list[Record]]] = {f: {} for f in self.hash_fields}

    def __len__(self) -> int:
        return len(self.by_id)

    # -- building and maintenance --------------------------------------------------------------
    def bulk_load(self, docs) -> None:
        cls = self.record_cls
        for doc in docs:
            rec = cls(doc)
            self.by_id[rec.id] = rec
        self._reindex_all()

    def _reindex_all(self) -> None:
        recs = sorted(self.by_id.values(), key=attrgetter("id"))
        self.id_recs = recs
        self.ids = [r.id for r in recs]
        for name, attr in _TIME_ATTRS.items():
            order = sorted(recs, key=attrgetter(attr))  # stable: ties stay in id order
            self.time_recs[name] = order
            self.time_keys[name] = list(map(attrgetter(attr, "id"), order))
        for f in self.hash_fields:
            idx: dict[Any, list[Record]] = {}
            for r in recs:
                for v in self._hash_values(f, r):
                    idx.setdefault(v, []).append(r)
            self.hash_idx[f] = idx

    def _hash_values(self, f: str, rec: Record) -> tuple:
        spec = self.schema.fields[f]
        v = spec.getter(rec)
        if spec.multi:
            return tuple(set(v))
        return () if v is None else (v,)

    def add(self, doc: dict) -> Record:
        rec = self.record_cls(doc)
        if rec.id in self.by_id:
            raise ValueError(f"duplicate id {rec.id}")
        self.by_id[rec.id] = rec
        i = bisect_left(self.ids, rec.id)
        self.ids.insert(i, rec.id)
        self.id_recs.insert(i, rec)
        for name, get in _TIME_FIELDS.items():
            k = (get(rec), rec.id)
            j = bisect_right(self.time_keys[name], k)
            self.time_keys[name].insert(j, k)
            self.time_recs[name].insert(j, rec)
        for f in self.hash_fields:
            for v in self._hash_values(f, rec):
                self.hash_idx[f].setdefault(v, []).append(rec)
        return rec

    def add_many(self, docs: Sequence[dict]) -> None:
        """Add new records; a big batch re-sorts the indexes once instead of inserting one by one."""
        if len(docs) <= 32:
            for doc in docs:
                self.add(doc)
            return
        recs = [self.record_cls(doc) for doc in docs]
        if len({r.id for r in recs}) < len(recs) or any(r.id in self.by_id for r in recs):
            raise ValueError("duplicate id")
        self.by_id.update((r.id, r) for r in recs)
        self._reindex_all()

    def remove(self, ids: Sequence[str]) -> list[Record]:
        """Delete the records with these ids (unknown ids are ignored); returns the removed records."""
        gone = [rec for i in dict.fromkeys(ids) if (rec := self.by_id.pop(i, None)) is not None]
        if not gone:
            return gone
        _remove_sorted(self.ids, self.id_recs, sorted(r.id for r in gone))
        for name, get in _TIME_FIELDS.items():
            _remove_sorted(self.time_keys[name], self.time_recs[name], sorted((get(r), r.id) for r in gone))
        doomed = {id(r) for r in gone}
        for f in self.hash_fields:
            idx = self.hash_idx[f]
            for rec in gone:
                for v in self._hash_values(f, rec):
                    kept = [x for x in idx.get(v, ()) if id(x) not in doomed]
                    if kept:
                        idx[v] = kept
                    else:
                        idx.pop(v, None)
        return gone

    def clear(self) -> None:
        self.by_id.clear()
        self._reindex_all()

    def replace(self, changes: Sequence[tuple[Record, dict]]) -> None:
        """Apply new documents to existing records, keeping every index right."""
        if not changes:
            return
        old_time = {name: [(get(r), r.id) for r, _ in changes] for name, get in _TIME_FIELDS.items()}
        old_hash = {f: [(r, self._hash_values(f, r)) for r, _ in changes] for f in self.hash_fields}
        for rec, doc in changes:
            if doc["id"] != rec.id:
                raise ValueError("a replacement must keep the id")
            rec.apply(doc)
        for name, get in _TIME_FIELDS.items():
            keys, recs = self.time_keys[name], self.time_recs[name]
            olds = old_time[name]
            news = [(get(r), r.id) for r, _ in changes]
            moved = [(o, n, r) for o, n, (r, _) in zip(olds, news, changes, strict=True) if o != n]
            if not moved:
                continue
            _remove_sorted(keys, recs, [o for o, _, _ in moved])
            moved.sort(key=lambda m: m[1])
            if keys and moved[0][1] < keys[-1]:
                for _, n, r in moved:
                    j = bisect_right(keys, n)
                    keys.insert(j, n)
                    recs.insert(j, r)
            else:  # the usual case: changes carry the newest timestamp, so they all go at the end
                keys.extend(n for _, n, _ in moved)
                recs.extend(r for _, _, r in moved)
        for f in self.hash_fields:
            idx = self.hash_idx[f]
            for rec, old_vals in old_hash[f]:
                new_vals = self._hash_values(f, rec)
                if set(old_vals) == set(new_vals):
                    continue
                for v in old_vals:
                    lst = idx.get(v)
                    if lst is not None:
                        lst[:] = [x for x in lst if x is not rec]
                        if not lst:
                            del idx[v]
                for v in new_vals:
                    idx.setdefault(v, []).append(rec)

    # -- queries -------------------------------------------------------------------------------
    def sort_spec(self, values: Sequence[str]) -> list[tuple[P.FieldSpec, bool]]:
        out: list[tuple[P.FieldSpec, bool]] = []
        for raw in values:
            parts = raw.split()
            if not parts or len(parts) > 2:
                raise QueryError(f"Malformed parameter: sort: Invalid sort expression '{raw}'.")
            name = parts[0]
            direction = parts[1].lower() if len(parts) == 2 else "asc"
            spec = self.schema.get(name)
            if spec is None or not spec.sortable or spec.multi or spec.kind == "nested":
                sortable = sorted(
                    n for n, s in self.schema.fields.items() if s.sortable and not s.multi and s.kind != "nested"
                )
                raise QueryError(
                    f"Malformed parameter: sort: Invalid sort field '{name}' (supported: {', '.join(sortable)})."
                )
            if direction not in ("asc", "desc"):
                raise QueryError(f"Malformed parameter: sort: Invalid sort direction '{parts[1]}' (use asc or desc).")
            out.append((spec, direction == "desc"))
        return out

    def _candidates(self, tree) -> list[Record] | None:
        """Records that can match, from hash lookups on top-level ``=``/``in`` conjuncts."""
        best: list[Record] | None = None
        vals = P.equality_values(tree, "id")
        if vals is not None:
            best = [r for v in set(vals) if (r := self.by_id.get(v)) is not None]
        for f in self.hash_fields:
            vals = P.equality_values(tree, f)
            if vals is None:
                continue
            idx = self.hash_idx[f]
            seen: dict[int, Record] = {}
            for v in set(vals):
                for r in idx.get(v, ()):
                    seen[id(r)] = r
            cand = list(seen.values())
            if best is None or len(cand) < len(best):
                best = cand
        return best

    def _index_source(self, tree, sorts) -> tuple[list, int, int, bool] | None:
        """(records in order, start, end, desc) when an index serves the requested order."""
        if not sorts:
            first, desc = "id", False
        else:
            first, desc = sorts[0][0].name, sorts[0][1]
        if first == "id":
            keys, recs = self.ids, self.id_recs
            lo, hi = P.bounds(tree, "id")
            start = 0
            if lo is not None:
                start = (bisect_right if lo.strict else bisect_left)(keys, lo.value)
            end = len(keys)
            if hi is not None:
                end = (bisect_left if hi.strict else bisect_right)(keys, hi.value)
            return recs, start, max(start, end), desc
        if first in _TIME_FIELDS:
            if len(sorts) > 1 and not (sorts[1][0].name == "id" and sorts[1][1] == desc):
                return None
            keys, recs = self.time_keys[first], self.time_recs[first]
            lo, hi = P.bounds(tree, first)
            start = 0
            if lo is not None:
                start = bisect_left(keys, (lo.value + (1 if lo.strict else 0),))
            end = len(keys)
            if hi is not None:
                end = bisect_left(keys, (hi.value + (0 if hi.strict else 1),))
            return recs, start, max(start, end), desc
        return None

    @staticmethod
    def _sort(recs: list[Record], sorts: Sequence[tuple[P.FieldSpec, bool]]) -> None:
        """Sort in place; ties broken by id in the direction of the last criterion."""
        last_desc = sorts[-1][1] if sorts else False
        recs.sort(key=attrgetter("id"), reverse=last_desc)
        for spec, desc in reversed(sorts):
            g = spec.getter
            if spec.nullable:
                recs.sort(key=lambda r, g=g: ((v := g(r)) is None, v), reverse=desc)
            else:
                recs.sort(key=g, reverse=desc)

    def query(
        self, tree, pred: Callable[[Any], bool] | None, sorts, offset: int, limit: int, with_total: bool
    ) -> tuple[list[Record], int | None]:
        """Order of operations: where, then sort, then offset/limit. Returns (page, total)."""
        need = offset + limit
        if pred is not None:
            cands = self._candidates(tree)
            if cands is not None:
                matches = [r for r in cands if pred(r)]
                self._sort(matches, sorts)
                return matches[offset:need], (min(len(matches), TOTAL_CAP) if with_total else None)
        src = self._index_source(tree, sorts)
        if src is None:  # general path: filter everything, sort, slice
            matches = [r for r in self.id_recs if pred(r)] if pred is not None else list(self.id_recs)
            self._sort(matches, sorts)
            total = len(matches) if pred is None else min(len(matches), TOTAL_CAP)
            return matches[offset:need], (total if with_total else None)
        recs, start, end, desc = src
        if pred is None:
            if not desc:
                page = recs[start + offset : min(start + need, end)]
            else:
                hi, lo = end - offset, max(start, end - need)
                page = recs[lo:hi][::-1] if hi > lo else []
            return page, (len(self.by_id) if with_total else None)
        page: list[Record] = []
        n = 0
        target = max(need, TOTAL_CAP) if with_total else need
        if need == 0 and not with_total:
            return [], None
        for r in _iter_range(recs, start, end, desc):
            if pred(r):
                n += 1
                if offset < n <= need:
                    page.append(r)
                if n >= target:
                    break
        return page, (min(n, TOTAL_CAP) if with_total else None)


# ---------------------------------------------------------------------------------------------------
# the store (world state for commerce)
# ---------------------------------------------------------------------------------------------------

INJECT_KINDS = (
    "negative_price",
    "missing_sku",
    "duplicate_sku",
    "negative_stock",
    "unknown_currency",
    "orphan_inventory",
)


#: bad order records, planted only when asked for by name (not part of the default kinds)
ORDER_INJECT_KINDS = ("negative_order_total", "orphan_order_line_sku", "zero_quantity_line", "customer_without_email")


def advance_order(doc: dict, stamp: str) -> None:
    """Move an order one step on its way: payment, then shipment, then completion."""
    if doc.get("paymentState") in ("Pending", "BalanceDue"):
        doc["paymentState"] = "Paid"
        doc["orderState"] = "Confirmed"
    elif doc.get("paymentState") == "Failed":
        doc["orderState"] = "Cancelled"
    elif doc.get("shipmentState", "Delivered") != "Delivered":
        doc["shipmentState"] = SHIPMENT_STATES[SHIPMENT_STATES.index(doc["shipmentState"]) + 1]
        doc["orderState"] = "Confirmed"
    else:
        doc["orderState"] = "Complete"
        doc["completedAt"] = stamp


@contextmanager
def _gc_paused():
    """Pause the cyclic GC while building millions of objects (records hold no cycles), then move
    the survivors to the permanent generation so later collections do not rescan them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def message_log(seed: int) -> M.MessageLog:
    """An empty message log whose messages are queryable like any collection."""
    return M.MessageLog(Collection("messages", _message_schema(), MessageRecord, hash_fields=()), seed)


class CommerceStore:
    """The five collections of one project, built from a :class:`World`, and its message log."""

    def __init__(self, world: World, messages: M.MessageLog | None = None) -> None:
        self.messages = messages or message_log(world.seed)
        with _gc_paused():
            self._build(world)

    def _build(self, world: World) -> None:
        self.world = world
        self.product_types = Collection("product-types", _product_type_schema(), Record)
        self.categories = Collection("categories", _category_schema(), CategoryRecord)
        self.channels = Collection("channels", _channel_schema(), ChannelRecord)
        self.products = Collection("product-projections", _product_schema(), ProductRecord, ("key", "sku"))
        self.inventory = Collection("inventory", _inventory_schema(), InventoryRecord, ("key", "sku"))
        self.orders = Collection("orders", _order_schema(), OrderRecord, ("key", "orderNumber"))
        self.customers = Collection("customers", _customer_schema(), CustomerRecord)
        self.product_types.bulk_load(world.iter_product_types())
        self.categories.bulk_load(world.iter_categories())
        self.channels.bulk_load(world.iter_channels())
        self.products.bulk_load(world.iter_products())
        self.inventory.bulk_load(world.iter_inventory())
        book = order_book(world)
        self.customers.bulk_load(book.customer_doc(c) for c in book.customers)
        self.orders.bulk_load(book.order_doc(o, self.product_id_of) for o in book.orders)
        self.collections = {
            c.resource: c
            for c in (
                self.products,
                self.inventory,
                self.channels,
                self.categories,
                self.product_types,
                self.orders,
                self.customers,
            )
        }
        self._rng = random.Random(f"{world.seed}/changes")
        self.order_count = len(book.orders)

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        skus: set[str] = set()
        variants = prices = 0
        for r in self.products.id_recs:
            variants += len(r.variants)
            prices += r.n_prices
            skus.update(r.skus)
        return {
            "products": len(self.products),
            "variants": variants,
            "skus": len(skus),
            "prices": prices,
            "inventory_entries": len(self.inventory),
            "channels": len(self.channels),
            "categories": len(self.categories),
            "product_types": len(self.product_types),
            "orders": len(self.orders),
            "order_lines": sum(len(r.skus) for r in self.orders.id_recs),
            "customers": len(self.customers),
        }

    def product_id_of(self, sku: str) -> str | None:
        holders = self.products.hash_idx["sku"].get(sku)
        return holders[0].id if holders else None

    def max_modified_ms(self) -> int:
        best = 0
        for c in self.collections.values():
            keys = c.time_keys["lastModifiedAt"]
            if keys:
                best = max(best, keys[-1][0])
        return best

    # -- churn ---------------------------------------------------------------------------------
    def _rng_for(self, seed: int | None) -> random.Random:
        return random.Random(seed) if seed is not None else self._rng

    def _product_parts(self, doc: dict):
        """(brand, product type spec) of a product document."""
        m = re.fullmatch(r"prod-(\d{6})", doc.get("key") or "")
        number = int(m.group(1)) if m else 0
        if 1 <= number <= self.world.products:
            return BRANDS[self.world.plan_brand[number - 1]], PRODUCT_TYPES[self.world.plan_type[number - 1]]
        return None, None

    def churn(
        self,
        n_products: int,
        n_inventory: int,
        ts: int,
        seed: int | None = None,
        deleted_products: int = 0,
        deleted_inventory: int = 0,
    ) -> dict:
        """Change prices and names of products and quantities of inventory entries, then delete some.

        Every change and deletion records one message, all with the same ``createdAt``.
        """
        rng = self._rng_for(seed)
        log = self.messages
        messages: list[dict] = []
        stamp = format_ms(ts)
        prods = self.products.id_recs
        picked = [prods[i] for i in sorted(rng.sample(range(len(prods)), min(n_products, len(prods))))]
        changes = []
        for rec in picked:
            doc = rec.load()
            doc["version"] += 1
            doc["lastModifiedAt"] = stamp
            variants = [doc["masterVariant"], *doc["variants"]]
            variant = variants[rng.randrange(len(variants))]
            if variant.get("prices"):
                price = variant["prices"][rng.randrange(len(variant["prices"]))]
                old = price["value"]["centAmount"]
                new = round_price(abs(old) * rng.uniform(0.8, 1.2)) * (1 if old >= 0 else -1)
                price["value"]["centAmount"] = new if new != old else old + 100
            brand, ptype = self._product_parts(doc)
            current = doc["name"].get("en-US", "")
            if brand is not None and ptype is not None:
                choices = [a for a in ADJECTIVES if product_name(brand, ptype, a)["en-US"] != current]
                doc["name"] = product_name(brand, ptype, choices[rng.randrange(len(choices))])
            else:
                doc["name"]["en-US"] = f"{current.split(' (Edition')[0]} (Edition {doc['version']})"
            changes.append((rec, doc))
            messages.append(log.message(M.PRODUCT, doc, M.product_published(doc), stamp, doc["version"]))
        self.products.replace(changes)

        inv = self.inventory.id_recs
        picked_inv = [inv[i] for i in sorted(rng.sample(range(len(inv)), min(n_inventory, len(inv))))]
        inv_changes = []
        for rec in picked_inv:
            doc = rec.load()
            doc["version"] += 1
            doc["lastModifiedAt"] = stamp
            old = doc["quantityOnStock"]
            qty = rng.randint(0, 600)
            if qty == old:
                qty = old + 1 if old < 600 else old - 1
            doc["quantityOnStock"] = max(qty, 0)
            doc["availableQuantity"] = doc["quantityOnStock"] - rng.randint(0, min(doc["quantityOnStock"], 25))
            inv_changes.append((rec, doc))
            change = M.inventory_quantity_set(rec.load(), doc)
            messages.append(log.message(M.INVENTORY_ENTRY, doc, change, stamp, doc["version"]))
        self.inventory.replace(inv_changes)
        gone_products = self._delete(self.products, M.PRODUCT, M.product_deleted, deleted_products, rng, stamp)
        gone_inventory = self._delete(
            self.inventory, M.INVENTORY_ENTRY, M.inventory_deleted, deleted_inventory, rng, stamp
        )
        log.record(messages + gone_products + gone_inventory)
        return {
            "products": [r.id for r in picked],
            "inventory": [r.id for r in picked_inv],
            "deleted_products": [m["resource"]["id"] for m in gone_products],
            "deleted_inventory": [m["resource"]["id"] for m in gone_inventory],
            "lastModifiedAt": stamp,
        }

    def _delete(
        self, coll: Collection, type_id: str, change: Callable[[dict], tuple[str, dict]], n: int, rng, stamp: str
    ) -> list[dict]:
        """Remove ``n`` random records of ``coll``; one deletion message each (``resourceVersion`` is version + 1)."""
        if n <= 0:
            return []
        recs = coll.id_recs
        doomed = [recs[i] for i in sorted(rng.sample(range(len(recs)), min(n, len(recs))))]
        messages = [
            self.messages.message(type_id, doc, change(doc), stamp, doc["version"] + 1)
            for doc in (r.load() for r in doomed)
        ]
        coll.remove([r.id for r in doomed])
        return messages

    # -- bad records ---------------------------------------------------------------------------
    def inject(self, kinds: Sequence[str], ts: int, seed: int | None = None) -> dict:
        rng = self._rng_for(seed)
        stamp = format_ms(ts)
        out: dict[str, dict] = {}
        product_kinds = [
            k for k in kinds if k in ("negative_price", "missing_sku", "duplicate_sku", "unknown_currency")
        ]
        prods = self.products.id_recs
        if product_kinds and not prods:
            raise ValueError("the world has no products to plant bad records in")
        # distinct products where possible (duplicate_sku needs a source and a target)
        wanted = len(product_kinds) + (1 if "duplicate_sku" in product_kinds else 0)
        if len(prods) >= wanted:
            pool = [prods[i] for i in rng.sample(range(len(prods)), wanted)]
        else:
            pool = [prods[rng.randrange(len(prods))] for _ in range(wanted)] if prods else []

        def bump(rec: Record) -> dict:
            doc = rec.load()
            doc["version"] += 1
            doc["lastModifiedAt"] = stamp
            return doc

        messages: list[dict] = []

        def publish(rec: Record, doc: dict) -> None:
            self.products.replace([(rec, doc)])
            messages.append(self.messages.message(M.PRODUCT, doc, M.product_published(doc), stamp, doc["version"]))

        def sku_variants(doc: dict) -> list[dict]:
            vs = [v for v in (doc["masterVariant"], *doc["variants"]) if v.get("sku") and v.get("prices")]
            return vs or [doc["masterVariant"]]

        def new_variant(doc: dict, sku: str | None) -> dict:
            base = orjson.loads(orjson.dumps(doc["masterVariant"]))
            vid = max(v["id"] for v in (doc["masterVariant"], *doc["variants"])) + 1
            base["id"] = vid
            base.pop("sku", None)
            if sku is not None:
                base = {"id": vid, "sku": sku, **{k: v for k, v in base.items() if k != "id"}}
            base["key"] = f"{doc.get('key') or doc['id']}-{vid:02d}"
            for p in base.get("prices", ()):
                p["id"] = uuid4_str(rng)
            doc["variants"].append(base)
            return base

        for kind in kinds:
            if kind == "negative_price":
                rec = pool.pop()
                doc = bump(rec)
                v = sku_variants(doc)[0]
                if not v.get("prices"):
                    v["prices"] = [
                        {
                            "id": uuid4_str(rng),
                            "value": {
                                "type": "centPrecision",
                                "currencyCode": "USD",
                                "centAmount": 1000,
                                "fractionDigits": 2,
                            },
                            "country": "US",
                        }
                    ]
                price = v["prices"][rng.randrange(len(v["prices"]))]
                price["value"]["centAmount"] = -max(1, abs(price["value"]["centAmount"]))
                publish(rec, doc)
                out[kind] = {"product_id": rec.id, "sku": v.get("sku"), "price_id": price["id"]}
            elif kind == "missing_sku":
                rec = pool.pop()
                doc = bump(rec)
                v = new_variant(doc, None)
                publish(rec, doc)
                out[kind] = {"product_id": rec.id, "variant_id": v["id"]}
            elif kind == "duplicate_sku":
                source = pool.pop()
                target = pool.pop()
                sku = source.skus[0] if source.skus else self.world.skus[0]
                doc = bump(target)
                v = new_variant(doc, sku)
                publish(target, doc)
                out[kind] = {
                    "product_id": target.id,
                    "variant_id": v["id"],
                    "sku": sku,
                    "existing_product_id": source.id,
                }
            elif kind == "unknown_currency":
                rec = pool.pop()
                doc = bump(rec)
                v = sku_variants(doc)[0]
                price = {
                    "id": uuid4_str(rng),
                    "value": {
                        "type": "centPrecision",
                        "currencyCode": "ZZZ",
                        "centAmount": rng.randint(500, 9000),
                        "fractionDigits": 2,
                    },
                }
                v.setdefault("prices", []).append(price)
                publish(rec, doc)
                out[kind] = {"product_id": rec.id, "sku": v.get("sku"), "price_id": price["id"]}
            elif kind == "negative_stock":
                inv = self.inventory.id_recs
                if not inv:
                    raise ValueError("the world has no inventory entries to plant bad records in")
                rec = inv[rng.randrange(len(inv))]
                doc = bump(rec)
                doc["quantityOnStock"] = -rng.randint(1, 50)
                doc["availableQuantity"] = doc["quantityOnStock"]
                change = M.inventory_quantity_set(rec.load(), doc)
                self.inventory.replace([(rec, doc)])
                messages.append(self.messages.message(M.INVENTORY_ENTRY, doc, change, stamp, doc["version"]))
                out[kind] = {"inventory_entry_id": rec.id, "sku": doc["sku"]}
            elif kind == "orphan_inventory":
                sku = self._free_orphan_sku()
                channels = self.channels.id_recs
                qty = rng.randint(1, 200)
                doc = {
                    "id": uuid4_str(rng),
                    "version": 1,
                    "sku": sku,
                    "quantityOnStock": qty,
                    "availableQuantity": qty,
                    "restockableInDays": 7,
                    "createdAt": stamp,
                    "lastModifiedAt": stamp,
                }
                if channels:
                    ch = channels[rng.randrange(len(channels))]
                    doc = {
                        **{k: doc[k] for k in ("id", "version", "sku")},
                        "supplyChannel": {"typeId": "channel", "id": ch.id},
                        **{k: v for k, v in doc.items() if k not in ("id", "version", "sku")},
                    }
                while doc["id"] in self.inventory.by_id:  # pragma: no cover - astronomically unlikely
                    doc["id"] = uuid4_str(rng)
                rec = self.inventory.add(doc)
                messages.append(self.messages.message(M.INVENTORY_ENTRY, doc, M.inventory_created(doc), stamp, 1))
                out[kind] = {"inventory_entry_id": rec.id, "sku": sku}
            else:  # pragma: no cover - validated by the caller
                raise ValueError(f"unknown kind {kind!r}")
        self.messages.record(messages)
        return out

    # -- orders --------------------------------------------------------------------------------
    def churn_orders(self, n: int, ts: int, seed: int | None = None) -> dict:
        """Move ``n`` unfinished orders one step on their way, then place ``n`` new orders."""
        rng = self._rng_for(seed)
        stamp = format_ms(ts)
        moving = [r for r in self.orders.id_recs if r.order_state not in ("Complete", "Cancelled")]
        picked = [moving[i] for i in sorted(rng.sample(range(len(moving)), min(n, len(moving))))]
        changes = []
        for rec in picked:
            doc = rec.load()
            advance_order(doc, stamp)
            doc["version"] += 1
            doc["lastModifiedAt"] = stamp
            changes.append((rec, doc))
        self.orders.replace(changes)
        created: list[str] = []
        book = order_book(self.world)
        for _ in range(n if self.world.skus else 0):
            self.order_count += 1
            doc = book.order_doc(book.make_order(rng, self.order_count, ts, fresh=True), self.product_id_of)
            while doc["id"] in self.orders.by_id:  # pragma: no cover - astronomically unlikely
                doc["id"] = uuid4_str(rng)
            created.append(self.orders.add(doc).id)
        return {"orders_created": created, "orders_updated": [r.id for r in picked]}

    def inject_orders(self, kinds: Sequence[str], ts: int, seed: int | None = None) -> dict:
        """Plant bad order and customer records (see :data:`ORDER_INJECT_KINDS`)."""
        rng = self._rng_for(seed)
        stamp = format_ms(ts)
        order_kinds = [k for k in kinds if k != "customer_without_email"]
        orders = self.orders.id_recs
        if len(orders) < len(order_kinds) or ("customer_without_email" in kinds and not self.customers.id_recs):
            raise ValueError("the world has too few orders or customers to plant bad records in")
        pool = [orders[i] for i in rng.sample(range(len(orders)), len(order_kinds))]
        out: dict[str, dict] = {}
        for kind in kinds:
            if kind == "customer_without_email":
                customers = self.customers.id_recs
                rec = customers[rng.randrange(len(customers))]
                doc = rec.load()
                doc.pop("email", None)
                doc["version"] += 1
                doc["lastModifiedAt"] = stamp
                self.customers.replace([(rec, doc)])
                out[kind] = {"customer_id": rec.id}
                continue
            rec = pool.pop()
            doc = rec.load()
            doc["version"] += 1
            doc["lastModifiedAt"] = stamp
            currency = doc["totalPrice"]["currencyCode"]
            if kind == "negative_order_total":
                for money in (doc["totalPrice"], *doc["taxedPrice"].values()):
                    money["centAmount"] = -max(1, abs(money["centAmount"]))
                out[kind] = {"order_id": rec.id, "order_number": doc.get("orderNumber")}
            elif kind == "orphan_order_line_sku":
                line = orjson.loads(orjson.dumps(doc["lineItems"][0]))
                line["id"] = uuid4_str(rng)
                line["productId"] = None
                line["variant"] = {"id": 1, "sku": self._free_order_sku()}
                doc["lineItems"].append(line)
                price_order_totals(doc, currency)
                out[kind] = {"order_id": rec.id, "line_item_id": line["id"], "sku": line["variant"]["sku"]}
            elif kind == "zero_quantity_line":
                line = doc["lineItems"][0]
                line["quantity"] = 0
                line["totalPrice"]["centAmount"] = 0
                price_order_totals(doc, currency)
                out[kind] = {"order_id": rec.id, "line_item_id": line["id"], "sku": line["variant"].get("sku")}
            else:  # pragma: no cover - validated by the caller
                raise ValueError(f"unknown kind {kind!r}")
            self.orders.replace([(rec, doc)])
        return out

    def _free_order_sku(self) -> str:
        used = {sku for r in self.orders.id_recs for sku in r.skus}
        for number in range(999_999, 0, -1):
            sku = f"ZZZ-{number:06d}-01"
            if sku not in used and sku not in self.products.hash_idx["sku"]:
                return sku
        raise ValueError("no free orphan sku")  # pragma: no cover

    def _free_orphan_sku(self) -> str:
        used = self.inventory.hash_idx["sku"]
        for number in range(999_999, 0, -1):
            for variant in range(99, 0, -1):
                sku = f"ZZZ-{number:06d}-{variant:02d}"
                if sku not in used:
                    return sku
        raise ValueError("no free orphan sku")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------------------

_SCOPE_RE = re.compile(r"^([a-z_]+):([A-Za-z0-9_-]+)$")


class TokenStore:
    """OAuth2 client-credentials tokens (in memory)."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = int(ttl_seconds)
        self.issued = 0
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def issue(self, scope: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (time.time() + self.ttl, scope)
            self.issued += 1
            if len(self._tokens) > 50_000:  # drop expired ones now and then
                now = time.time()
                self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
        return token, self.ttl

    def check(self, token: str) -> str | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        if time.time() >= entry[0]:
            with self._lock:
                self._tokens.pop(token, None)
            return None
        return entry[1]

    def expire_all(self) -> int:
        with self._lock:
            n = len(self._tokens)
            self._tokens.clear()
        return n


# ---------------------------------------------------------------------------------------------------
# HTTP-facing system
# ---------------------------------------------------------------------------------------------------


@dataclass
class CommerceConfig:
    project_key: str = "beauty-hub"
    client_id: str = "hub-client"
    client_secret: str = "hub-secret"
    token_ttl: int = 172_800


_INT_RE = re.compile(r"^-?\d+$")
_BAD_CLIENT = "Please provide valid client credentials using HTTP Basic Authentication."


def _int_param(query: dict, name: str, default: int, lo: int, hi: int) -> int:
    values = query.get(name)
    if not values:
        return default
    raw = values[-1].strip()
    if not _INT_RE.match(raw):
        raise QueryError(f"Malformed parameter: {name}: Must be an integer between {lo} and {hi}, got '{raw}'.")
    v = int(raw)
    if not lo <= v <= hi:
        raise QueryError(f"Malformed parameter: {name}: Must be an integer between {lo} and {hi}, got '{raw}'.")
    return v


def _bool_param(query: dict, name: str, default: bool) -> bool:
    values = query.get(name)
    if not values:
        return default
    raw = values[-1].strip().lower()
    if raw in ("true", "false"):
        return raw == "true"
    raise QueryError(f"Malformed parameter: {name}: Must be true or false, got '{values[-1]}'.")


class CommerceSystem:
    """Serves ``/commerce``: the OAuth token endpoint and the project API."""

    prefix = "/commerce"
    name = "commerce"

    def __init__(self, world: World, config: CommerceConfig | None = None) -> None:
        self.config = config or CommerceConfig()
        self.tokens = TokenStore(self.config.token_ttl)
        self.messages = message_log(world.seed)  # outlives resets, so its subscribers do too
        self.store = CommerceStore(world, self.messages)
        self.created_ms = world.catalog_times[0]

    # -- world lifecycle -----------------------------------------------------------------------
    def build_state(self, world: World) -> CommerceStore:
        """Build the new state for ``world`` (no lock needed; swap it in with :meth:`swap_state`)."""
        return CommerceStore(world, self.messages)

    def swap_state(self, state: CommerceStore) -> CommerceStore:
        """Install ``state`` and clear the messages; returns the previous state (to free outside the lock)."""
        old, self.store = self.store, state
        self.messages.clear(seed=state.world.seed)
        self.created_ms = state.world.catalog_times[0]
        return old

    def stats(self) -> dict:
        return {"project_key": self.config.project_key, **self.store.stats()}

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, req) -> Reply:
        """``req`` has ``method``, ``path`` (below the prefix), ``query`` (dict of lists), ``headers``
        (case-insensitive mapping) and ``body`` (bytes)."""
        path = req.path
        if path == "/oauth/token":
            if req.method != "POST":
                return ct_error(
                    405, "MethodNotAllowed", f"Method {req.method} not allowed on /oauth/token.", [("Allow", "POST")]
                )
            return self.token(req)
        segments = [unquote(s) for s in path.split("/") if s]
        if not segments:
            return not_found(f"URI not found: /commerce{path}")
        scope = self._authenticate(req)
        if scope is None:
            return auth_error(401, "invalid_token", "invalid_token", message="invalid_token")
        project = segments[0]
        if project != self.config.project_key:
            return not_found(f"The project '{project}' does not exist.")
        if req.method not in ("GET", "HEAD"):
            return ct_error(
                405,
                "MethodNotAllowed",
                f"Method {req.method} not allowed: the simulator is read-only.",
                [("Allow", "GET")],
            )
        if len(segments) == 1:
            return 200, orjson.dumps(self._project_doc()), []
        coll = self.messages.store if segments[1] == "messages" else self.store.collections.get(segments[1])
        if coll is None or len(segments) > 3:
            return not_found(f"URI not found: /{'/'.join(segments)}")
        if len(segments) == 3:
            return self._get_one(coll, segments[2])
        try:
            return self._list(coll, req.query)
        except QueryError as exc:
            return exc.reply
        except P.PredicateError as exc:
            return invalid_input(str(exc))

    # -- auth ----------------------------------------------------------------------------------
    def _authenticate(self, req) -> str | None:
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.check(token.strip())

    def token(self, req) -> Reply:
        params: dict[str, list[str]] = {}
        for source in (req.query_string, req.body.decode("utf-8", "replace") if req.body else ""):
            for k, vs in parse_qs(source, keep_blank_values=True).items():
                params.setdefault(k, []).extend(vs)
        client_id = client_secret = None
        header = req.headers.get("Authorization") or ""
        scheme, _, cred = header.partition(" ")
        if scheme.lower() == "basic" and cred:
            try:
                decoded = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
                cid, sep, csecret = decoded.partition(":")
                if sep:
                    client_id, client_secret = unquote(cid), unquote(csecret)
            except (ValueError, UnicodeDecodeError):
                pass
        if client_id is None and params.get("client_id"):
            client_id = params["client_id"][0]
            client_secret = (params.get("client_secret") or [""])[0]
        cfg = self.config
        if client_id != cfg.client_id or client_secret != cfg.client_secret:
            return auth_error(401, "invalid_client", "Invalid client credentials.", message=_BAD_CLIENT)
        grant = (params.get("grant_type") or [""])[0]
        if not grant:
            return auth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant != "client_credentials":
            return auth_error(400, "unsupported_grant_type", f"Unsupported grant type '{grant}'.")
        requested = " ".join(params.get("scope") or []).split()
        if not requested:
            requested = [f"manage_project:{cfg.project_key}"]
        granted: list[str] = []
        for s in requested:
            m = _SCOPE_RE.match(s)
            if m is None or m.group(2) != cfg.project_key:
                detail = f"The project '{m.group(2)}' does not exist." if m else "Malformed scope."
                return auth_error(400, "invalid_scope", f"Invalid scope: {s}. {detail}", message=f"Invalid scope: {s}")
            if s not in granted:
                granted.append(s)
        token, ttl = self.tokens.issue(" ".join(granted))
        body = {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": " ".join(granted)}
        return 200, orjson.dumps(body), [("Cache-Control", "no-store")]

    # -- resources -----------------------------------------------------------------------------
    def _project_doc(self) -> dict:
        stamp = format_ms(self.created_ms)
        return {
            "key": self.config.project_key,
            "name": self.config.project_key,
            "version": 1,
            "countries": ["US", "FR", "GB", "DE"],
            "currencies": ["USD", "EUR", "GBP"],
            "languages": ["en-US", "fr-FR"],
            "createdAt": stamp,
            "messages": {"enabled": True},
        }

    def _get_one(self, coll: Collection, ident: str) -> Reply:
        if ident.startswith("key="):
            key = ident[4:]
            hits = coll.hash_idx.get("key", {}).get(key) if "key" in coll.hash_fields else None
            if hits:
                return 200, hits[0].body, []
            return not_found(f"The Resource with key '{key}' was not found.")
        rec = coll.by_id.get(ident)
        if rec is None:
            return not_found(f"The Resource with ID '{ident}' was not found.")
        return 200, rec.body, []

    def _list(self, coll: Collection, query: dict) -> Reply:
        limit = _int_param(query, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
        offset = _int_param(query, "offset", 0, 0, MAX_OFFSET)
        with_total = _bool_param(query, "withTotal", True)
        sorts = coll.sort_spec(query.get("sort") or ())
        variables = {k[4:]: v for k, v in query.items() if k.startswith("var.")}
        where = [w for w in (query.get("where") or ()) if w.strip()]
        tree, pred = P.build(where, coll.schema, variables)
        page, total = coll.query(tree, pred, sorts, offset, limit, with_total)
        head = b'{"limit":%d,"offset":%d,"count":%d,' % (limit, offset, len(page))
        if total is not None:
            head += b'"total":%d,' % total
        body = b"".join((head, b'"results":[', b",".join([r.body for r in page]), b"]}"))
        return 200, body, []
