"""Fault injection for the simulated APIs (configured through ``/_admin/faults``).

A rule matches requests whose path starts with its ``path_prefix`` (default ``/commerce``; admin
paths are never faulted). A rule fires either on the next ``next`` matching requests or on every
``every``-th matching request. Rules are checked in order and the first one that fires decides.

Kinds:

* ``status`` (default when ``status`` is given): answer ``status`` with the system's error body
  (commercetools codes: 500 ``General``, 502 ``BadGateway``, 503 ``OverCapacity``, 504
  ``GatewayTimeout``, 429 ``TooManyRequests``) and ``Retry-After`` when ``retry_after`` is set;
* ``delay``: sleep ``delay_ms`` then answer normally (``delay_ms`` also works on the other kinds);
* ``reset``: answer normally but close the connection half-way through the body (the client sees
  an incomplete read / connection reset);
* ``truncate``: answer with the body cut in half (Content-Length matches, the JSON is invalid).

To add a kind: accept it in :data:`KINDS` and :meth:`FaultRule.from_json`, then give it meaning in
the server's ``_apply_fault``/``_send`` (see ``simulators/server.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

KINDS = ("status", "delay", "reset", "truncate")

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


def _pos_int(body: dict, name: str) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise FaultConfigError(f"'{name}' must be a positive integer")
    return v


@dataclass
class FaultRule:
    kind: str
    status: int | None
    next: int | None  # remaining firings (None when using every)
    every: int | None
    retry_after: str | None
    path_prefix: str
    delay_ms: int
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_json(cls, body: Any) -> FaultRule:
        if not isinstance(body, dict):
            raise FaultConfigError("each fault must be an object")
        unknown = set(body) - {"kind", "status", "next", "every", "retry_after", "path_prefix", "delay_ms"}
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
        nxt, every = _pos_int(body, "next"), _pos_int(body, "every")
        if nxt is not None and every is not None:
            raise FaultConfigError("give either 'next' or 'every', not both")
        if nxt is None and every is None:
            nxt = 1
        retry_after = body.get("retry_after")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, (str, int)):
                raise FaultConfigError("'retry_after' must be a string (seconds or an HTTP date)")
            retry_after = str(retry_after)
        prefix = body.get("path_prefix", "/commerce")
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.startswith("/_admin"):
            raise FaultConfigError("'path_prefix' must start with '/' and must not target /_admin")
        delay = body.get("delay_ms", 0)
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600_000:
            raise FaultConfigError("'delay_ms' must be an integer between 0 and 600000")
        if kind == "delay" and delay == 0:
            raise FaultConfigError("kind 'delay' needs 'delay_ms' > 0")
        return cls(kind, status, nxt, every, retry_after, prefix, delay)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "path_prefix": self.path_prefix}
        if self.status is not None:
            out["status"] = self.status
        if self.every is not None:
            out["every"] = self.every
        else:
            out["next"] = self.next
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.delay_ms:
            out["delay_ms"] = self.delay_ms
        out["seen"] = self.seen
        out["fired"] = self.fired
        return out


class FaultEngine:
    """Holds the rules and decides, per request, which fault (if any) fires."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def configure(self, faults: Any, append: bool = False) -> list[dict]:
        if not isinstance(faults, list):
            raise FaultConfigError("'faults' must be a list")
        rules = [FaultRule.from_json(f) for f in faults]
        with self._lock:
            self._rules = [*self._rules, *rules] if append else rules
            return [r.to_json() for r in self._rules]

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules = []
            return n

    def describe(self) -> list[dict]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def match(self, path: str) -> FaultRule | None:
        """The rule that fires for ``path`` (consuming one firing), or ``None``."""
        if not self._rules or path.startswith("/_admin"):
            return None
        with self._lock:
            fired: FaultRule | None = None
            for rule in self._rules:
                if not path.startswith(rule.path_prefix):
                    continue
                rule.seen += 1
                if rule.every is not None:
                    if rule.seen % rule.every == 0:
                        fired = rule
                elif rule.next:
                    rule.next -= 1
                    fired = rule
                if fired is not None:
                    fired.fired += 1
                    break
            self._rules = [r for r in self._rules if r.every is not None or r.next]
            return fired
