"""Fault injection for the simulated APIs (configured through ``/_admin/faults`` or ``--faults FILE``).

A rule matches requests whose path starts with its ``path_prefix`` (default ``/commerce``; admin
paths are never faulted). It lets the first ``after`` matching requests pass, then fires on the next
``next`` matching requests, on every ``every``-th one, or on each with probability ``rate`` (drawn
from a generator seeded with ``seed``, so a run is repeatable). Rules are checked in order and the
first one that fires decides.

Kinds (``docs/simulators.md`` has the table):

* ``status`` (default when ``status`` is given): answer ``status`` with the system's error body and
  ``Retry-After`` when ``retry_after`` is set (in seconds, or ``retry_after_form: "http-date"`` for
  an HTTP date that many seconds ahead);
* ``delay``: sleep ``delay_ms`` then answer normally (``delay_ms`` also works on the other kinds);
* ``reset``: answer normally but close the connection half-way through the body;
* ``truncate``: answer with the body cut in half (Content-Length matches, the JSON is invalid);
* ``malformed``: a valid JSON page with one record broken (``variant`` ``missing_id`` or ``wrong_type``;
  a report row loses the value of its last dimension, or its first metric becomes text);
* ``duplicate``: the page also carries the last record of the previous page of the same list;
* ``empty_page``: the page is empty but claims more (commercetools keeps ``total``, Stripe says
  ``has_more: true``, the WMS gives a cursor back, a report keeps its ``rowCount``);
* ``expire_token``: the credential expires: commerce tokens are really revoked (the request then
  meets the normal 401), the other systems answer 401 (payments: ``api_key_expired``);
* ``mutate``: answer normally, then change ``records`` records behind the export (a version bump),
  so the next page of a paginated export sees a world that moved.

To add a kind: accept it in :data:`KINDS` (and its fields in :meth:`FaultRule.from_json`), then give it
meaning in the server's ``Router.dispatch`` (``simulators/server.py``) or in :func:`rewrite_page`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

KINDS = (
    "status",
    "delay",
    "reset",
    "truncate",
    "malformed",
    "duplicate",
    "empty_page",
    "expire_token",
    "mutate",
)
PAGE_KINDS = ("malformed", "duplicate", "empty_page")
MALFORMED_VARIANTS = ("missing_id", "wrong_type")
RETRY_AFTER_FORMS = ("seconds", "http-date")
FIELDS = {
    "kind",
    "status",
    "next",
    "every",
    "rate",
    "after",
    "seed",
    "retry_after",
    "retry_after_form",
    "path_prefix",
    "delay_ms",
    "variant",
    "records",
}
#: the key of the record list in each system's list body: commercetools, Stripe and WMS, reports
LIST_KEYS = ("results", "data", "rows")

#: status -> (commercetools error code, message)
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    429: ("TooManyRequests", "Too many requests. Please retry later."),
    500: ("General", "Internal server error."),
    502: ("BadGateway", "Bad gateway."),
    503: ("OverCapacity", "Service is temporarily over capacity. Please retry later."),
    504: ("GatewayTimeout", "Gateway timeout."),
}


class FaultConfigError(ValueError):
    pass


def _int(body: dict, name: str, lo: int, default: int | None = None) -> int | None:
    v = body.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise FaultConfigError(f"'{name}' must be an integer >= {lo}")
    return v


def _choice(body: dict, name: str, allowed: tuple[str, ...], default: str) -> str:
    v = body.get(name, default)
    if v not in allowed:
        raise FaultConfigError(f"'{name}' must be one of {list(allowed)}")
    return v


@dataclass
class FaultRule:
    kind: str
    status: int | None
    next: int | None  # remaining firings (None when using every or rate)
    every: int | None
    retry_after: str | None
    path_prefix: str
    delay_ms: int
    rate: float | None = None
    after: int = 0
    seed: int = 0
    retry_after_form: str = "seconds"
    variant: str = "missing_id"
    records: int = 5
    seen: int = 0
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_json(cls, body: Any) -> FaultRule:
        if not isinstance(body, dict):
            raise FaultConfigError("each fault must be an object")
        unknown = set(body) - FIELDS
        if unknown:
            raise FaultConfigError(f"unknown fault fields: {sorted(unknown)}")
        status = body.get("status")
        kind = body.get("kind") or ("status" if status is not None else None)
        if kind not in KINDS:
            raise FaultConfigError(f"'kind' must be one of {list(KINDS)} (or give a 'status')")
        if kind == "status":
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise FaultConfigError("'status' must be an integer between 400 and 599")
        elif status is not None:
            raise FaultConfigError(f"'status' does not apply to kind '{kind}'")
        nxt, every = _int(body, "next", 1), _int(body, "every", 1)
        rate = body.get("rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1):
            raise FaultConfigError("'rate' must be a number in (0, 1]")
        if sum(x is not None for x in (nxt, every, rate)) > 1:
            raise FaultConfigError("give one of 'next', 'every' or 'rate'")
        if nxt is None and every is None and rate is None:
            nxt = 1
        retry_after = body.get("retry_after")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, (str, int)):
                raise FaultConfigError("'retry_after' must be a string (seconds or an HTTP date)")
            retry_after = str(retry_after)
        form = _choice(body, "retry_after_form", RETRY_AFTER_FORMS, "seconds")
        if form == "http-date" and not (retry_after or "").isdigit():
            raise FaultConfigError("'retry_after_form' http-date needs 'retry_after' in whole seconds")
        prefix = body.get("path_prefix", "/commerce")
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.startswith("/_admin"):
            raise FaultConfigError("'path_prefix' must start with '/' and must not target /_admin")
        delay = body.get("delay_ms", 0)
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600_000:
            raise FaultConfigError("'delay_ms' must be an integer between 0 and 600000")
        if kind == "delay" and delay == 0:
            raise FaultConfigError("kind 'delay' needs 'delay_ms' > 0")
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultConfigError("'seed' must be an integer")
        rule = cls(
            kind,
            status,
            nxt,
            every,
            retry_after,
            prefix,
            delay,
            rate=None if rate is None else float(rate),
            after=_int(body, "after", 0, 0) or 0,
            seed=seed,
            retry_after_form=form,
            variant=_choice(body, "variant", MALFORMED_VARIANTS, "missing_id"),
            records=_int(body, "records", 1, 5) or 5,
        )
        rule.rng.seed(seed)
        return rule

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "path_prefix": self.path_prefix}
        if self.status is not None:
            out["status"] = self.status
        if self.every is not None:
            out["every"] = self.every
        elif self.rate is not None:
            out["rate"], out["seed"] = self.rate, self.seed
        else:
            out["next"] = self.next
        if self.after:
            out["after"] = self.after
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
            out["retry_after_form"] = self.retry_after_form
        if self.delay_ms:
            out["delay_ms"] = self.delay_ms
        if self.kind == "malformed":
            out["variant"] = self.variant
        if self.kind == "mutate":
            out["records"] = self.records
        out["seen"] = self.seen
        out["fired"] = self.fired
        return out

    def _fires(self) -> bool:
        """Count one matching request; whether the rule fires on it."""
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.every is not None:
            return (self.seen - self.after) % self.every == 0
        if self.rate is not None:
            return self.rng.random() < self.rate
        if self.next:
            self.next -= 1
            return True
        return False

    @property
    def exhausted(self) -> bool:
        return self.every is None and self.rate is None and not self.next


class FaultEngine:
    """Holds the rules and decides, per request, which fault (if any) fires."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._fired: dict[str, int] = {}  # kind -> firings since the rules were last set (exhausted ones too)
        self._lock = threading.Lock()

    def configure(self, faults: Any, append: bool = False) -> list[dict]:
        if not isinstance(faults, list):
            raise FaultConfigError("'faults' must be a list")
        rules = [FaultRule.from_json(f) for f in faults]
        with self._lock:
            self._rules = [*self._rules, *rules] if append else rules
            if not append:
                self._fired = {}
            return [r.to_json() for r in self._rules]

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules, self._fired = [], {}
            return n

    def fired_by_kind(self) -> dict[str, int]:
        """How often each kind fired since the rules were last set, counting rules already used up."""
        with self._lock:
            return dict(self._fired)

    def describe(self) -> list[dict]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def wants_pages(self, path: str) -> bool:
        """Whether a `duplicate` rule may need the pages served on ``path`` (to repeat their last record)."""
        with self._lock:
            return any(r.kind == "duplicate" and path.startswith(r.path_prefix) for r in self._rules)

    def match(self, path: str) -> FaultRule | None:
        """The rule that fires for ``path`` (consuming one firing), or ``None``."""
        if not self._rules or path.startswith("/_admin"):
            return None
        with self._lock:
            fired: FaultRule | None = None
            for rule in self._rules:
                if not path.startswith(rule.path_prefix):
                    continue
                if rule._fires():
                    fired = rule
                    fired.fired += 1
                    self._fired[rule.kind] = self._fired.get(rule.kind, 0) + 1
                    break
            self._rules = [r for r in self._rules if not r.exhausted]
            return fired


def list_key(body: Any) -> str | None:
    """Where a list body keeps its records, or None when ``body`` is no list page."""
    if isinstance(body, dict):
        return next((k for k in LIST_KEYS if isinstance(body.get(k), list)), None)
    return None


def last_record(raw: bytes) -> Any:
    """The last record of a list page (None when ``raw`` is no non-empty list page)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    key = list_key(body)
    return body[key][-1] if key and body[key] else None


def rewrite_page(rule: FaultRule, raw: bytes, previous: Any, restart_cursor: str | None) -> bytes:
    """The list page ``raw`` with the fault of ``rule`` applied (unchanged when it is no list page).

    ``previous`` is the last record of the previous page of the same list (for ``duplicate``);
    ``restart_cursor`` is a WMS cursor that reads this page again (for ``empty_page``).
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    key = list_key(body)
    if key is None:
        return raw
    records = body[key]
    if rule.kind == "empty_page":
        body[key] = []
        if "count" in body:  # commercetools: total (when asked for) still counts the records
            body["count"] = 0
        if "has_more" in body:  # Stripe
            body["has_more"] = True
        if "next_cursor" in body:  # WMS
            body["next_cursor"] = restart_cursor
    elif rule.kind == "duplicate" and records:
        body[key] = [previous if previous is not None else records[0], *records]
    elif rule.kind == "malformed" and records:
        record = records[rule.rng.randrange(len(records))]
        if isinstance(record, dict):
            _break(record, rule.variant)
    return orjson.dumps(body)


def _break(record: dict, variant: str) -> None:
    if record.get("dimensionValues") and record.get("metricValues"):  # a report row: no id, or a metric no number
        if variant == "missing_id":
            record["dimensionValues"][-1].pop("value", None)
        else:
            record["metricValues"][0]["value"] = "not-a-number"
        return
    if variant == "missing_id":
        record.pop("id", None)
        return
    for name in ("version", "created", "updated_at", "occurred_at"):
        if name in record:
            record[name] = "not-a-" + name
            return
    record["id"] = {"not": "an id"}
