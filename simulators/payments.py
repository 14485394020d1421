"""Stripe-compatible payment gateway (a read-only subset), served under ``/payments``.

* :class:`StripeList`: one object type (charges, refunds, ...) kept newest first by ``(created, id)``,
  with Stripe's cursor paging (``starting_after`` / ``ending_before``) and ``created`` filters;
* :class:`PaymentsState`: the objects built from the world's :class:`~simulators.world.OrderBook`
  (charges for most paid orders, refunds, disputes, payment intents, balance transactions and the
  events that tell their history), plus churn and bad-record injection;
* :class:`PaymentsSystem`: the HTTP-facing handler (``handle(request) -> (status, body, headers)``).

Every timestamp is a unix second at or before the order book's anchor (the world's build time), so
the 30-day event window holds the recent part of the history. The world deliberately contains what
a reconciliation must find: paid orders without a charge, charges whose amount differs from the
order total, charges with no order, refunds of charges whose ``metadata.order_id`` names no order,
and disputed charges.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from simulators.world import OrderPlan, World, order_book, uuid4_str

Headers = list[tuple[str, str]]
Reply = tuple[int, bytes, Headers]

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
EVENT_RETENTION_S = 30 * 86_400
API_VERSION = "2024-06-20"
DEFAULT_API_KEY = "sk_test_hub"
#: a key the simulator knows as expired (answers 401 ``api_key_expired``)
EXPIRED_API_KEY = "sk_test_expired_hub"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DAY_S = 86_400

#: bad payment records, planted only when asked for by name
PAYMENT_INJECT_KINDS = (
    "refund_exceeds_charge",
    "negative_charge_amount",
    "unknown_payment_currency",
    "risk_score_out_of_range",
)

# ---------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------


def stripe_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: Headers | None = None,
) -> Reply:
    """A Stripe error response: ``{error: {type, code?, message, param?}}``."""
    error: dict[str, Any] = {"type": type_}
    if code is not None:
        error["code"] = code
    error["message"] = message
    if param is not None:
        error["param"] = param
    return status, orjson.dumps({"error": error}), list(headers or [])


class ParamError(Exception):
    """A bad request parameter; carries the ready 400 reply."""

    def __init__(self, message: str, code: str, param: str | None) -> None:
        super().__init__(message)
        self.reply = stripe_error(400, message, code=code, param=param)


def mask_key(key: str) -> str:
    """Stripe's way of showing a rejected key: its prefix, stars and (for long keys) the last 4."""
    prefix = key[:8] if key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")) else key[:3]
    tail = key[-4:] if len(key) >= 20 else ""
    return prefix + "*" * max(4, len(key) - len(prefix) - len(tail)) + tail


# ---------------------------------------------------------------------------------------------------
# one object type
# ---------------------------------------------------------------------------------------------------


class StripeList:
    """Objects of one type, indexed by id and ordered by ``(created, id)``; lists answer newest first."""

    def __init__(self, name: str, noun: str) -> None:
        self.name = name  # URL segment, e.g. "payment_intents"
        self.noun = noun  # for messages, e.g. "payment_intent"
        self.url = f"/v1/{name}"
        self.by_id: dict[str, dict] = {}
        self.keys: list[tuple[int, str]] = []  # ascending

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, obj: dict) -> dict:
        if obj["id"] in self.by_id:
            raise ValueError(f"duplicate id {obj['id']}")
        self.by_id[obj["id"]] = obj
        insort(self.keys, (obj["created"], obj["id"]))
        return obj

    def cursor_key(self, param: str, ident: str) -> tuple[int, str]:
        obj = self.by_id.get(ident)
        if obj is None:
            raise ParamError(f"No such {self.noun}: '{ident}'", "resource_missing", param)
        return obj["created"], obj["id"]

    def page(
        self,
        limit: int,
        lo: int | None,
        hi: int | None,
        after: tuple[int, str] | None,
        before: tuple[int, str] | None,
        keep: Callable[[dict], bool] | None,
    ) -> tuple[list[dict], bool]:
        """(objects newest first, has_more) with ``lo <= created <= hi`` and the cursor applied."""
        keys = self.keys
        start = 0 if lo is None else bisect_left(keys, (lo,))
        end = len(keys) if hi is None else bisect_left(keys, (hi + 1,))
        if after is not None:
            end = min(end, bisect_left(keys, after))
        if before is not None:
            start = max(start, bisect_right(keys, before))
        order: Iterator[int] = iter(range(start, end)) if before is not None else iter(range(end - 1, start - 1, -1))
        found: list[dict] = []
        for i in order:
            obj = self.by_id[keys[i][1]]
            if keep is None or keep(obj):
                found.append(obj)
                if len(found) > limit:
                    break
        has_more = len(found) > limit
        found = found[:limit]
        if before is not None:
            found.reverse()
        return found, has_more


# ---------------------------------------------------------------------------------------------------
# the world's payments
# ---------------------------------------------------------------------------------------------------

_RISK_LEVELS = (("normal", 0, 64), ("elevated", 65, 74), ("highest", 75, 100))
_DISPUTE_REASONS = ("fraudulent", "product_not_received", "duplicate", "product_unacceptable", "general")
_DISPUTE_STATUSES = ("needs_response", "under_review", "won", "lost")
_REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
_CARD_BRANDS = ("visa", "mastercard", "amex")


def stripe_fee(amount: int) -> int:
    return round(amount * 0.029) + 30


class PaymentsState:
    """Charges, refunds, disputes, payment intents, balance transactions and events of one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        book = order_book(world)
        self.anchor = book.anchor_ms // 1000
        self.orders = book.orders
        self.rng = random.Random(f"{world.seed}/payments")
        self.charges = StripeList("charges", "charge")
        self.refunds = StripeList("refunds", "refund")
        self.disputes = StripeList("disputes", "dispute")
        self.payment_intents = StripeList("payment_intents", "payment_intent")
        self.balance_transactions = StripeList("balance_transactions", "balance_transaction")
        self.events = StripeList("events", "event")
        self.lists = {
            s.name: s
            for s in (
                self.charges,
                self.refunds,
                self.disputes,
                self.payment_intents,
                self.balance_transactions,
                self.events,
            )
        }
        self.charged_orders: set[str] = set()
        self._build()
        self.churn_rng = random.Random(f"{world.seed}/payments/changes")

    # -- ids and building blocks ---------------------------------------------------------------
    def new_id(self, prefix: str, rng: random.Random) -> str:
        return f"{prefix}_{''.join(rng.choices(_ALPHABET, k=24))}"

    def _time_before_anchor(self, start: int, rng: random.Random, lo_s: int, hi_s: int) -> int | None:
        """``start`` plus a delay in [lo_s, hi_s], or None when that is after the anchor."""
        when = start + rng.randint(lo_s, hi_s)
        return when if when <= self.anchor - 60 else None

    def _outcome(self, rng: random.Random, risky: bool, failed: bool) -> dict:
        level, lo, hi = _RISK_LEVELS[2 if failed and rng.random() < 0.5 else 1 if risky else 0]
        if not risky and not failed and rng.random() < 0.04:
            level, lo, hi = _RISK_LEVELS[1]
        score = rng.randint(lo, hi) if level != "normal" else min(rng.randint(0, 40), rng.randint(0, 64))
        declined = "blocked" if level == "highest" else "issuer_declined"
        return {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": ("highest_risk_level" if level == "highest" else "generic_decline") if failed else None,
            "risk_level": level,
            "risk_score": score,
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": declined if failed else "authorized",
        }

    def _balance_txn(
        self, rng: random.Random, source: str, kind: str, amount: int, fee: int, currency: str, created: int
    ) -> dict:
        available_on = (created // _DAY_S + 2) * _DAY_S
        txn = {
            "id": self.new_id("txn", rng),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": available_on,
            "created": created,
            "currency": currency,
            "description": None,
            "fee": fee,
            "fee_details": [
                {"amount": fee, "application": None, "currency": currency, "description": "Stripe processing fees",
                 "type": "stripe_fee"}
            ] if fee else [],
            "net": amount - fee,
            "reporting_category": {"adjustment": "dispute"}.get(kind, kind),
            "source": source,
            "status": "available" if available_on <= self.anchor else "pending",
            "type": kind,
        }  # fmt: skip
        self.balance_transactions.add(txn)
        return txn

    def _event(self, rng: random.Random, kind: str, created: int, obj: dict, previous: dict | None = None) -> dict:
        data: dict[str, Any] = {"object": orjson.loads(orjson.dumps(obj))}  # a snapshot
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": self.new_id("evt", rng),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        self.events.add(event)
        return event

    def create_charge(
        self,
        rng: random.Random,
        created: int,
        amount: int,
        currency: str,
        order: OrderPlan | None,
        metadata: dict,
        failed: bool = False,
        risky: bool = False,
    ) -> tuple[dict, list[dict]]:
        """A charge with its payment intent, balance transaction and event; returns (charge, events)."""
        currency = currency.lower()
        charge_id, intent_id = self.new_id("ch", rng), self.new_id("pi", rng)
        outcome = self._outcome(rng, risky, failed)
        country = order.country if order is not None else "US"
        txn = None
        if not failed:
            txn = self._balance_txn(rng, charge_id, "charge", amount, stripe_fee(amount), currency, created)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": 0 if failed else amount,
            "amount_refunded": 0,
            "balance_transaction": txn["id"] if txn else None,
            "billing_details": {"address": {"country": country}},
            "captured": not failed,
            "created": created,
            "currency": currency,
            "description": f"Order {order.order_number}" if order is not None else "Manual charge",
            "disputed": False,
            "failure_code": "card_declined" if failed else None,
            "failure_message": "Your card was declined." if failed else None,
            "livemode": False,
            "metadata": metadata,
            "outcome": outcome,
            "paid": not failed,
            "payment_intent": intent_id,
            "payment_method": self.new_id("pm", rng),
            "payment_method_details": {
                "type": "card",
                "card": {
                    "brand": rng.choice(_CARD_BRANDS),
                    "country": country,
                    "last4": f"{rng.randrange(10_000):04d}",
                },
            },
            "refunded": False,
            "status": "failed" if failed else "succeeded",
        }
        self.payment_intents.add(
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0 if failed else amount,
                "capture_method": "automatic",
                "created": max(0, created - rng.randint(1, 30)),
                "currency": currency,
                "latest_charge": charge_id,
                "livemode": False,
                "metadata": metadata,
                "payment_method_types": ["card"],
                "status": "requires_payment_method" if failed else "succeeded",
            }
        )
        self.charges.add(charge)
        if order is not None:
            self.charged_orders.add(order.id)
        event = self._event(rng, "charge.failed" if failed else "charge.succeeded", created, charge)
        return charge, [event]

    def create_refund(
        self, rng: random.Random, charge: dict, amount: int, created: int, settle_at: int | None = None
    ) -> tuple[dict, list[dict]]:
        """Refund ``amount`` of ``charge`` at ``created``; pending until ``settle_at`` when that is given."""
        refund_id = self.new_id("re", rng)
        currency = charge["currency"]
        txn = self._balance_txn(rng, refund_id, "refund", -amount, 0, currency, created)
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": txn["id"],
            "charge": charge["id"],
            "created": created,
            "currency": currency,
            "metadata": dict(charge["metadata"]),
            "payment_intent": charge["payment_intent"],
            "reason": rng.choice(_REFUND_REASONS),
            "receipt_number": None,
            "status": "pending" if settle_at is not None else "succeeded",
        }
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.refunds.add(refund)
        events = [
            self._event(rng, "charge.refunded", created, charge, previous),
            self._event(rng, "refund.created", created, refund),
        ]
        if settle_at is not None:
            refund["status"] = "succeeded"
            events.append(self._event(rng, "refund.updated", settle_at, refund, {"status": "pending"}))
        return refund, events

    def create_dispute(self, rng: random.Random, charge: dict, created: int) -> tuple[dict, list[dict]]:
        dispute_id = self.new_id("dp", rng)
        txn = self._balance_txn(rng, dispute_id, "adjustment", -charge["amount"], 1500, charge["currency"], created)
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": charge["amount"],
            "balance_transactions": [txn],
            "charge": charge["id"],
            "created": created,
            "currency": charge["currency"],
            "evidence_details": {
                "due_by": created + 21 * _DAY_S,
                "has_evidence": False,
                "past_due": created + 21 * _DAY_S < self.anchor,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": rng.choice(_DISPUTE_REASONS),
            "status": rng.choice(_DISPUTE_STATUSES),
        }
        charge["disputed"] = True
        self.disputes.add(dispute)
        return dispute, [self._event(rng, "charge.dispute.created", created, dispute)]

    # -- the initial world ---------------------------------------------------------------------
    def _build(self) -> None:
        rng = self.rng
        for order in self.orders:
            state = order.payment_state
            if state == "Pending" or (state == "Paid" and rng.random() < 0.015):
                continue  # unpaid, or paid outside the gateway: no charge
            created = order.created_ms // 1000 + rng.randint(2, 90)
            total = order.total_cents
            amount = total
            if state == "Paid" and rng.random() < 0.03:
                amount = max(50, total + rng.choice((-1, 1)) * rng.randint(1, 500))  # amount differs
            elif state == "BalanceDue":
                amount = max(50, total * rng.randint(50, 90) // 100)
            elif state == "CreditOwed":
                amount = total + rng.randint(100, 2000)
            metadata = {"order_id": order.id, "order_number": order.order_number}
            risky = rng.random() < 0.03
            charge, _ = self.create_charge(
                rng, min(created, self.anchor - 60), amount, order.currency, order, metadata, state == "Failed", risky
            )
            if state == "Failed":
                continue
            roll = rng.random()
            if roll < 0.08:
                refund_at = self._time_before_anchor(charge["created"], rng, 3600, 20 * _DAY_S)
                if refund_at is not None:
                    part = amount if roll < 0.04 else max(1, amount * rng.randint(10, 60) // 100)
                    settle = self._time_before_anchor(refund_at, rng, 3600, 3 * _DAY_S) if roll < 0.02 else None
                    self.create_refund(rng, charge, part, refund_at, settle)
            elif roll < 0.08 + (0.25 if risky else 0.015):
                dispute_at = self._time_before_anchor(charge["created"], rng, 5 * _DAY_S, 30 * _DAY_S)
                if dispute_at is not None:
                    self.create_dispute(rng, charge, dispute_at)
        n = len(self.orders)
        window = 90 * _DAY_S
        for _ in range(max(1, n // 50) if n else 0):  # charges with no order at all
            created = self.anchor - rng.randint(3600, window)
            self.create_charge(rng, created, rng.randint(5, 300) * 100, rng.choice(("USD", "EUR", "GBP")), None, {})
        for _ in range(max(1, n // 100) if n else 0):  # refunded charges whose order does not exist
            created = self.anchor - rng.randint(2 * _DAY_S, window)
            metadata = {"order_id": uuid4_str(rng)}
            charge, _ = self.create_charge(rng, created, rng.randint(5, 300) * 100, "USD", None, metadata)
            refund_at = self._time_before_anchor(created, rng, 3600, _DAY_S)
            if refund_at is not None:
                self.create_refund(rng, charge, charge["amount"], refund_at)

    # -- stats, churn and bad records ----------------------------------------------------------
    def stats(self, now: int) -> dict:
        return {
            "charges": len(self.charges),
            "refunds": len(self.refunds),
            "disputes": len(self.disputes),
            "payment_intents": len(self.payment_intents),
            "balance_transactions": len(self.balance_transactions),
            "events": len(self.events),
            "events_listable": len(self.events) - bisect_left(self.events.keys, (now - EVENT_RETENTION_S,)),
            "orders_without_charge": sum(1 for o in self.orders if o.id not in self.charged_orders),
            "anchor": self.anchor,
        }

    def churn(self, n: int, ts_ms: int, seed: int | None = None) -> dict:
        """``n`` new charges (for orders that had none, else with no order) and ``n`` refunds."""
        rng = random.Random(seed) if seed is not None else self.churn_rng
        now = ts_ms // 1000
        uncharged = [o for o in self.orders if o.id not in self.charged_orders]
        charges, refunds, events = [], [], []
        for _ in range(n):
            order = uncharged.pop(rng.randrange(len(uncharged))) if uncharged else None
            if order is not None:
                metadata = {"order_id": order.id, "order_number": order.order_number}
                amount, currency = order.total_cents, order.currency
            else:
                metadata, amount, currency = {}, rng.randint(5, 300) * 100, "USD"
            charge, new_events = self.create_charge(rng, now, amount, currency, order, metadata)
            charges.append(charge["id"])
            events += new_events
        refundable = [
            c
            for c in self.charges.by_id.values()
            if c["status"] == "succeeded" and not c["refunded"] and c["amount"] > 0
        ]
        refundable.sort(key=lambda c: c["id"])
        for charge in rng.sample(refundable, min(n, len(refundable))):
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if rng.random() < 0.5 else max(1, left * rng.randint(10, 60) // 100)
            refund, new_events = self.create_refund(rng, charge, amount, now)
            refunds.append(refund["id"])
            events += new_events
        return {
            "charges_created": charges,
            "refunds_created": refunds,
            "events_created": [e["id"] for e in events],
        }

    def inject(self, kinds: Sequence[str], seed: int | None = None) -> dict:
        rng = random.Random(seed) if seed is not None else self.churn_rng
        candidates = sorted(
            (c for c in self.charges.by_id.values() if c["status"] == "succeeded" and not c["refunded"]),
            key=lambda c: c["id"],
        )
        if len(candidates) < len(kinds):
            raise ValueError("the world has too few charges to plant bad records in")
        out: dict[str, dict] = {}
        for kind, charge in zip(kinds, rng.sample(candidates, len(kinds)), strict=True):
            if kind == "refund_exceeds_charge":
                charge["amount_refunded"] = charge["amount"] + rng.randint(100, 1000)
                charge["refunded"] = True
            elif kind == "negative_charge_amount":
                charge["amount"] = -max(1, charge["amount"])
            elif kind == "unknown_payment_currency":
                charge["currency"] = "zzz"
            elif kind == "risk_score_out_of_range":
                charge["outcome"]["risk_score"] = 140
            else:  # pragma: no cover - validated by the caller
                raise ValueError(f"unknown kind {kind!r}")
            out[kind] = {"payment_id": charge["id"], "order_id": charge["metadata"].get("order_id")}
        return out


# ---------------------------------------------------------------------------------------------------
# HTTP-facing system
# ---------------------------------------------------------------------------------------------------

#: list parameters beyond the common ones, per object type; the value is the object field filtered on
_FILTERS: dict[str, dict[str, Callable[[dict], Any]]] = {
    "charges": {"payment_intent": lambda o: o["payment_intent"]},
    "refunds": {"charge": lambda o: o["charge"], "payment_intent": lambda o: o["payment_intent"]},
    "disputes": {"charge": lambda o: o["charge"], "payment_intent": lambda o: o["payment_intent"]},
    "payment_intents": {},
    "balance_transactions": {"type": lambda o: o["type"], "source": lambda o: o["source"]},
    "events": {},  # `type` and `types[]` take patterns such as "charge.*"
}
_COMMON = {"limit", "starting_after", "ending_before", "created", "expand", "expand[]"}
_CREATED_OPS = ("gte", "gt", "lte", "lt")


def _int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    raw = values[-1].strip()
    try:
        return int(raw)
    except ValueError:
        raise ParamError(f"Invalid integer: {raw}", "parameter_invalid_integer", name) from None


def _created_bounds(query: dict[str, list[str]]) -> tuple[int | None, int | None]:
    lo = hi = None
    exact = _int(query, "created")
    if exact is not None:
        lo = hi = exact
    for op in _CREATED_OPS:
        value = _int(query, f"created[{op}]")
        if value is None:
            continue
        if op in ("gte", "gt"):
            value += op == "gt"
            lo = value if lo is None else max(lo, value)
        else:
            value -= op == "lt"
            hi = value if hi is None else min(hi, value)
    return lo, hi


def _event_type_filter(patterns: list[str]) -> Callable[[dict], bool]:
    exact = {p for p in patterns if not p.endswith(".*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith(".*"))
    return lambda e: e["type"] in exact or (bool(prefixes) and e["type"].startswith(prefixes))


@dataclass
class PaymentsConfig:
    api_key: str = DEFAULT_API_KEY
    expired_keys: tuple[str, ...] = (EXPIRED_API_KEY,)


class PaymentsSystem:
    """Serves ``/payments``: ``GET /v1/{charges|refunds|disputes|payment_intents|balance_transactions|events}``."""

    prefix = "/payments"
    name = "payments"

    def __init__(self, world: World, config: PaymentsConfig | None = None) -> None:
        self.config = config or PaymentsConfig()
        self.state = PaymentsState(world)

    # -- world lifecycle -----------------------------------------------------------------------
    @staticmethod
    def build_state(world: World) -> PaymentsState:
        return PaymentsState(world)

    def swap_state(self, state: PaymentsState) -> PaymentsState:
        old, self.state = self.state, state
        return old

    def stats(self) -> dict:
        return self.state.stats(int(time.time()))

    def fault_reply(self, status: int, headers: Headers) -> Reply:
        if status == 429:
            message = "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
            return stripe_error(429, message, code="rate_limit", headers=headers)
        if status >= 500:
            return stripe_error(status, "An unknown error occurred.", type_="api_error", headers=headers)
        return stripe_error(status, "The request could not be served.", headers=headers)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, req) -> Reply:
        denied = self._authenticate(req)
        if denied is not None:
            return denied
        segments = [unquote(s) for s in req.path.split("/") if s]
        objects = self.state.lists.get(segments[1]) if len(segments) in (2, 3) and segments[0] == "v1" else None
        if objects is None:
            return stripe_error(
                404, f"Unrecognized request URL ({req.method}: {req.path or '/'}).", code="resource_missing"
            )
        if req.method not in ("GET", "HEAD"):
            message = f"Method {req.method} is not supported: the simulator is read-only."
            return stripe_error(405, message, headers=[("Allow", "GET")])
        headers: Headers = [("Request-Id", f"req_{secrets.token_hex(7)}"), ("Stripe-Version", API_VERSION)]
        if len(segments) == 3:
            obj = objects.by_id.get(segments[2])
            if obj is None or (objects is self.state.events and obj["created"] < time.time() - EVENT_RETENTION_S):
                return stripe_error(
                    404, f"No such {objects.noun}: '{segments[2]}'", code="resource_missing", param="id"
                )
            return 200, orjson.dumps(obj), headers
        try:
            body = self._list(objects, req.query)
        except ParamError as exc:
            return exc.reply
        return 200, body, headers

    def _authenticate(self, req) -> Reply | None:
        header = req.headers.get("Authorization") or ""
        scheme, _, credential = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential.strip(), validate=True).decode("utf-8").partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            return stripe_error(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if key in self.config.expired_keys:
            return stripe_error(401, f"Expired API Key provided: {mask_key(key)}", code="api_key_expired")
        if not secrets.compare_digest(key.encode(), self.config.api_key.encode()):
            return stripe_error(401, f"Invalid API Key provided: {mask_key(key)}")
        return None

    def _list(self, objects: StripeList, query: dict[str, list[str]]) -> bytes:
        filters = _FILTERS[objects.name]
        allowed = _COMMON | set(filters) | ({"type", "types[]"} if objects is self.state.events else set())
        for name in query:
            if name not in allowed and not (name.startswith("created[") and name[8:-1] in _CREATED_OPS):
                raise ParamError(f"Received unknown parameter: {name}", "parameter_unknown", name)
        limit = _int(query, "limit")
        limit = DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_LIMIT:
            raise ParamError(f"Invalid limit: must be between 1 and {MAX_LIMIT}", "parameter_invalid_integer", "limit")
        after_id, before_id = (query.get(p, [""])[-1] for p in ("starting_after", "ending_before"))
        if after_id and before_id:
            raise ParamError(
                "You may only specify one of these parameters: starting_after, ending_before.",
                "parameters_exclusive",
                "ending_before",
            )
        after = objects.cursor_key("starting_after", after_id) if after_id else None
        before = objects.cursor_key("ending_before", before_id) if before_id else None
        lo, hi = _created_bounds(query)
        if objects is self.state.events:
            oldest = int(time.time()) - EVENT_RETENTION_S
            lo = oldest if lo is None else max(lo, oldest)
        tests: list[Callable[[dict], bool]] = []
        for name, get in filters.items():
            if query.get(name):
                wanted = query[name][-1]
                tests.append(lambda o, get=get, wanted=wanted: get(o) == wanted)
        if objects is self.state.events:
            patterns = query.get("types[]") or query.get("type", [])[-1:]
            if patterns:
                tests.append(_event_type_filter(patterns))
        keep = (lambda o: all(t(o) for t in tests)) if tests else None
        page, has_more = objects.page(limit, lo, hi, after, before, keep)
        head = b'{"object":"list","url":"%s","has_more":%s,"data":[' % (
            objects.url.encode(),
            b"true" if has_more else b"false",
        )
        return b"".join((head, b",".join(orjson.dumps(o) for o in page), b"]}"))
