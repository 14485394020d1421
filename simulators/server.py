"""One HTTP server hosting every simulated system under a path prefix, plus ``/_admin``.

* :class:`SimulatorState` owns the shared :class:`~simulators.world.World`, the clock, the fault
  engine, request statistics and one handler per system (``/commerce`` today; ``/payments``,
  ``/warehouse`` and ``/analytics`` are added the same way: an object with ``prefix``, ``name``,
  ``handle(request) -> (status, body, headers)``, ``build_state(world)``/``swap_state(state) -> old state`` and
  ``stats()``, registered in :meth:`SimulatorState._make_systems`).
* :class:`Router` dispatches by the first path segment, applies faults, counts requests and answers
  the admin endpoints.
* :class:`Handler` speaks HTTP/1.1 with keep-alive over ``ThreadingHTTPServer`` and writes each
  response (headers and body) with one ``sendall``.

Use :func:`start_in_thread` in-process or ``python -m simulators serve`` from a shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from email.message import Message
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import orjson

from simulators.analytics import INJECT_KINDS as ANALYTICS_INJECT_KINDS
from simulators.analytics import AnalyticsSystem, InvalidArgument
from simulators.commerce import INJECT_KINDS, ORDER_INJECT_KINDS, CommerceConfig, CommerceSystem, ct_error
from simulators.faults import (
    PAGE_KINDS,
    STATUS_ERRORS,
    FaultConfigError,
    FaultEngine,
    FaultRule,
    last_record,
    rewrite_page,
)
from simulators.payments import PAYMENT_INJECT_KINDS, PaymentsSystem, stripe_error
from simulators.subscriptions import AmqpSubscription, SubscriptionError
from simulators.warehouse import INJECT_KINDS as WAREHOUSE_INJECT_KINDS
from simulators.warehouse import WarehouseSystem
from simulators.warehouse import encode_cursor as encode_wms_cursor
from simulators.world import MAX_PRODUCTS, Clock, World

Headers = list[tuple[str, str]]


@dataclass
class Request:
    method: str
    path: str  # below the system prefix (e.g. "/beauty-hub/inventory")
    full_path: str  # as requested, without the query string
    query_string: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    transport: str | None = None  # None | "reset" | "truncate"  (faults)


# ---------------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------------


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SimulatorState:
    """Everything one server instance holds (world, systems, faults, stats)."""

    def __init__(self, products: int = 1000, seed: int = 42, commerce: CommerceConfig | None = None) -> None:
        self.lock = threading.RLock()  # held while a system handles a request or the world changes
        self.reset_lock = threading.Lock()  # one world rebuild at a time
        self.clock = Clock()
        self.faults = FaultEngine()
        self.world = World(seed=seed, products=products)
        self.clock.advance_to(self.world.max_initial_ms)
        self.commerce = CommerceSystem(self.world, commerce or CommerceConfig())
        self.warehouse = WarehouseSystem(self.world)
        self.systems: dict[str, Any] = {self.commerce.prefix: self.commerce, self.warehouse.prefix: self.warehouse}
        self.payments = PaymentsSystem(self.world)
        self.systems[self.payments.prefix] = self.payments
        self.analytics = AnalyticsSystem(self.world)
        self.systems[self.analytics.prefix] = self.analytics
        self.subscription: AmqpSubscription | None = None
        self._stats_lock = threading.Lock()
        self.requests_total = 0
        self.by_status: dict[str, int] = {}
        self.by_system: dict[str, int] = {}

    # -- stats ---------------------------------------------------------------------------------
    def count(self, system: str, status: int) -> None:
        with self._stats_lock:
            self.requests_total += 1
            key = str(status)
            self.by_status[key] = self.by_status.get(key, 0) + 1
            self.by_system[system] = self.by_system.get(system, 0) + 1

    def stats(self) -> dict:
        with self.lock:
            out: dict[str, Any] = {"seed": self.world.seed, "products": self.world.products}
            for system in self.systems.values():
                out[system.name] = system.stats()
        with self._stats_lock:
            out["requests"] = {
                "total": self.requests_total,
                "by_status": dict(sorted(self.by_status.items())),
                "by_system": dict(sorted(self.by_system.items())),
            }
        out["tokens_issued"] = self.commerce.tokens.issued
        out["token_ttl_seconds"] = self.commerce.tokens.ttl
        out["clock_last_ms"] = self.clock.last
        return out

    # -- subscription --------------------------------------------------------------------------
    def subscribe(self, subscription: AmqpSubscription | None) -> None:
        """Send every new commerce message to `subscription` (None switches the destination off)."""
        old, self.subscription = self.subscription, subscription
        if old is not None:
            self.commerce.messages.unsubscribe(old)
            old.close()
        if subscription is not None:
            self.commerce.messages.subscribe(subscription)

    # -- world ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, products: int | None = None) -> dict:
        with self.reset_lock:
            seed = self.world.seed if seed is None else seed
            products = self.world.products if products is None else products
            world = World(seed=seed, products=products)
            states = {prefix: system.build_state(world) for prefix, system in self.systems.items()}
            with self.lock:
                self.world = world
                old = [system.swap_state(states[prefix]) for prefix, system in self.systems.items()]
                self.clock.advance_to(world.max_initial_ms)
            del old  # free the previous world outside the lock
        return self.stats()


# ---------------------------------------------------------------------------------------------------
# router
# ---------------------------------------------------------------------------------------------------


def _json(status: int, obj: Any, headers: Headers | None = None) -> Response:
    return Response(status, orjson.dumps(obj), list(headers or []))


def _int_field(body: dict, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    v = body.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise AdminError(400, f"'{name}' must be an integer between {lo} and {hi}")
    return v


class Router:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._last_records: dict[str, Any] = {}  # path -> last record served (for duplicate faults)

    def dispatch(self, method: str, target: str, headers: Message, body: bytes) -> Response:
        path, _, qs = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        if path == "/_admin" or path.startswith("/_admin/"):
            return self.admin(method, path, body)
        state = self.state
        prefix = "/" + path.split("/", 2)[1] if path.count("/") >= 1 else path
        system = state.systems.get(prefix)
        sys_name = system.name if system is not None else "unknown"
        rule = state.faults.match(path)
        if rule is not None and rule.delay_ms:
            time.sleep(rule.delay_ms / 1000.0)
        expiry = rule is not None and rule.kind == "expire_token"
        if expiry and prefix == state.commerce.prefix:
            state.commerce.tokens.expire_all()  # a real expiry: the request meets the normal 401
            expiry = False
        if rule is not None and (rule.kind == "status" or expiry):
            resp = self._fault_reply(system, rule)
        elif system is None:
            s, b, h = ct_error(404, "ResourceNotFound", f"URI not found: {path}")
            resp = Response(s, b, h)
        else:
            query = parse_qs(qs, keep_blank_values=True)
            req = Request(method, path[len(prefix) :], path, qs, query, headers, body)
            with state.lock:
                s, b, h = system.handle(req)
            resp = Response(s, b, h)
            if rule is not None and rule.kind in ("reset", "truncate"):
                resp.transport = rule.kind
            if resp.status == 200:
                self._page_faults(rule, path, query, resp)
            if rule is not None and rule.kind == "mutate":
                self._mutate(prefix, rule)
        state.count(sys_name, resp.status)
        return resp

    def _page_faults(self, rule: FaultRule | None, path: str, query: dict[str, list[str]], resp: Response) -> None:
        """Apply a page fault (malformed, duplicate, empty_page) and remember pages a duplicate may repeat."""
        previous = self._last_records.get(path)
        if self.state.faults.wants_pages(path):
            self._last_records[path] = last_record(resp.body)
        if rule is None or rule.kind not in PAGE_KINDS:
            return
        cursor = (query.get("cursor") or [None])[-1]
        if cursor is None and path.startswith(self.state.warehouse.prefix):  # a WMS cursor before every record
            cursor = encode_wms_cursor(path.rsplit("/", 1)[-1], -1, "")
        resp.body = rewrite_page(rule, resp.body, previous, cursor)

    def _mutate(self, prefix: str, rule: FaultRule) -> None:
        """Change ``rule.records`` records of the system behind ``prefix`` (versions bump), mid-export."""
        state, n, seed = self.state, rule.records, rule.seed + rule.fired
        with state.lock:
            ts = state.clock.now()
            if prefix == state.commerce.prefix:
                state.commerce.store.churn(n, n, ts, seed)
            elif prefix == state.payments.prefix:
                state.payments.state.churn(n, ts, seed)
            elif prefix == state.warehouse.prefix:
                state.warehouse.store.churn(n, ts, seed)

    @staticmethod
    def _fault_reply(system: Any, rule: FaultRule) -> Response:
        if rule.kind == "expire_token":  # payments, warehouse, analytics: the credential expired
            if getattr(system, "name", None) == "payments":
                s, b, h = stripe_error(401, "Expired API Key provided.", code="api_key_expired")
                return Response(s, b, h)
            rule = replace(rule, status=401)
        assert rule.status is not None
        headers: Headers = []
        if rule.retry_after is not None:
            retry_after = rule.retry_after
            if rule.retry_after_form == "http-date":
                retry_after = formatdate(time.time() + int(retry_after), usegmt=True)
            headers.append(("Retry-After", retry_after))
        fault_reply = getattr(system, "fault_reply", None)
        if fault_reply is not None:
            s, b, h = fault_reply(rule.status, headers)
            return Response(s, b, h)
        code, message = STATUS_ERRORS.get(
            rule.status,
            ("General", HTTPStatus(rule.status).phrase if rule.status in HTTPStatus._value2member_map_ else "Error"),
        )
        s, b, h = ct_error(rule.status, code, message, headers)
        return Response(s, b, h)

    # -- admin ---------------------------------------------------------------------------------
    def admin(self, method: str, path: str, raw: bytes) -> Response:
        try:
            body: Any = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            return _json(400, {"error": f"invalid JSON body: {exc}"})
        if not isinstance(body, dict):
            return _json(400, {"error": "the body must be a JSON object"})
        routes = {
            ("GET", "/_admin/stats"): self.admin_stats,
            ("GET", "/_admin/health"): lambda _b: _json(200, {"status": "ok"}),
            ("POST", "/_admin/reset"): self.admin_reset,
            ("POST", "/_admin/churn"): self.admin_churn,
            ("POST", "/_admin/inject"): self.admin_inject,
            ("POST", "/_admin/auth"): self.admin_auth,
            ("GET", "/_admin/analytics/rows"): self.admin_analytics_rows,
            ("GET", "/_admin/faults"): lambda _b: _json(
                200, {"faults": self.state.faults.describe(), "fired": self.state.faults.fired_by_kind()}
            ),
            ("POST", "/_admin/faults"): self.admin_faults,
            ("DELETE", "/_admin/faults"): lambda _b: _json(200, {"cleared": self.state.faults.clear()}),
            ("GET", "/_admin/subscription"): lambda _b: _json(200, self._subscription()),
            ("POST", "/_admin/subscription"): self.admin_subscription,
            ("DELETE", "/_admin/subscription"): self.admin_unsubscribe,
        }
        handler = routes.get((method, path.rstrip("/") or "/"))
        if handler is None:
            allowed = sorted(m for m, p in routes if p == path.rstrip("/"))
            if allowed:
                return _json(405, {"error": f"use {', '.join(allowed)} on {path}"}, [("Allow", ", ".join(allowed))])
            return _json(404, {"error": f"unknown admin endpoint {method} {path}"})
        try:
            return handler(body)
        except AdminError as exc:
            return _json(exc.status, {"error": str(exc)})
        except FaultConfigError as exc:
            return _json(400, {"error": str(exc)})

    def admin_stats(self, _body: dict) -> Response:
        return _json(200, self.state.stats())

    def admin_reset(self, body: dict) -> Response:
        seed = _int_field(body, "seed", -(2**63), 2**63 - 1)
        products = _int_field(body, "products", 0, MAX_PRODUCTS)
        return _json(200, self.state.reset(seed=seed, products=products))

    def admin_churn(self, body: dict) -> Response:
        n_products = _int_field(body, "products", 0, 10_000_000, 0)
        n_inventory = _int_field(body, "inventory", 0, 100_000_000, 0)
        n_movements = _int_field(body, "stock_movements", 0, 10_000_000, 0)
        n_orders = _int_field(body, "orders", 0, 1_000_000, 0)
        n_payments = _int_field(body, "payments", 0, 1_000_000, 0)
        deleted_products = _int_field(body, "deleted_products", 0, 10_000_000, 0) or 0
        deleted_inventory = _int_field(body, "deleted_inventory", 0, 100_000_000, 0) or 0
        seed = _int_field(body, "seed", -(2**63), 2**63 - 1)
        state = self.state
        with state.lock:
            ts = state.clock.now()
            result = state.commerce.store.churn(
                n_products or 0, n_inventory or 0, ts, seed, deleted_products, deleted_inventory
            )
            if n_movements:
                result["warehouse"] = state.warehouse.store.churn(n_movements, ts, seed)
            if n_orders:
                result.update(state.commerce.store.churn_orders(n_orders, ts, seed))
            if n_payments:
                result["payments"] = state.payments.state.churn(n_payments, ts, seed)
        return _json(200, result)

    def admin_inject(self, body: dict) -> Response:
        kinds = body.get("kinds", list(INJECT_KINDS))
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise AdminError(400, "'kinds' must be a list of strings")
        known = [*INJECT_KINDS, *WAREHOUSE_INJECT_KINDS, *ORDER_INJECT_KINDS, *PAYMENT_INJECT_KINDS]
        known += ANALYTICS_INJECT_KINDS
        unknown = [k for k in kinds if k not in known]
        if unknown:
            raise AdminError(400, f"unknown kinds {unknown}; known: {known}")
        kinds = list(dict.fromkeys(kinds))
        seed = _int_field(body, "seed", -(2**63), 2**63 - 1)
        state = self.state
        with state.lock:
            ts = state.clock.now()
            try:
                result = state.commerce.store.inject([k for k in kinds if k in INJECT_KINDS], ts, seed)
                order_kinds = [k for k in kinds if k in ORDER_INJECT_KINDS]
                if order_kinds:
                    result.update(state.commerce.store.inject_orders(order_kinds, ts, seed))
                payment_kinds = [k for k in kinds if k in PAYMENT_INJECT_KINDS]
                if payment_kinds:
                    result.update(state.payments.state.inject(payment_kinds, seed))
                warehouse_kinds = [k for k in kinds if k in WAREHOUSE_INJECT_KINDS]
                if warehouse_kinds:
                    result.update(state.warehouse.store.inject(warehouse_kinds, ts, seed))
                analytics_kinds = [k for k in kinds if k in ANALYTICS_INJECT_KINDS]
                if analytics_kinds:
                    result.update(state.analytics.inject(analytics_kinds, ts, seed))
            except ValueError as exc:
                raise AdminError(409, str(exc)) from None
        return _json(200, result)

    def admin_auth(self, body: dict) -> Response:
        ttl = _int_field(body, "token_ttl_seconds", 0, 10 * 365 * 86_400)
        expire = body.get("expire_tokens", False)
        if not isinstance(expire, bool):
            raise AdminError(400, "'expire_tokens' must be true or false")
        tokens = self.state.commerce.tokens
        if ttl is not None:
            tokens.ttl = ttl
        expired = tokens.expire_all() if expire else 0
        return _json(200, {"token_ttl_seconds": tokens.ttl, "expired_tokens": expired})

    def admin_analytics_rows(self, body: dict) -> Response:
        with self.state.lock:
            try:
                return _json(200, self.state.analytics.row_counts(body.get("start"), body.get("end")))
            except InvalidArgument as exc:
                raise AdminError(400, str(exc)) from None

    def _subscription(self) -> dict:
        subscription = self.state.subscription
        return subscription.describe() if subscription is not None else {"destination": None}

    def admin_subscription(self, body: dict) -> Response:
        """Publish every new commerce message to a RabbitMQ queue: ``{"url": "amqp://...", "queue": "..."}``."""
        url, queue = body.get("url"), body.get("queue", "commerce-messages")
        if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
            raise AdminError(400, "'url' must be an amqp:// or amqps:// URL")
        if not isinstance(queue, str) or not queue:
            raise AdminError(400, "'queue' must be a non-empty string")
        try:
            subscription = AmqpSubscription(url, queue)
        except SubscriptionError as exc:
            raise AdminError(502, str(exc)) from None
        self.state.subscribe(subscription)
        return _json(200, self._subscription())

    def admin_unsubscribe(self, _body: dict) -> Response:
        self.state.subscribe(None)
        return _json(200, self._subscription())

    def admin_faults(self, body: dict) -> Response:
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise AdminError(400, "'append' must be true or false")
        rules = self.state.faults.configure(body.get("faults", []), append=append)
        return _json(200, {"faults": rules})


# ---------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------

_date_cache: list = [0, ""]


def _http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return _date_cache[1]


_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simulators/1.0"
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0:
            return None
        return self.rfile.read(n) if n else b""

    def _handle(self, method: str) -> None:
        body = self._read_body()
        corr = self.headers.get("X-Correlation-ID") or f"sim-{os.urandom(12).hex()}"
        if body is None:
            self.close_connection = True
            s, b, h = ct_error(400, "InvalidInput", "Malformed request body framing.")
            self._send(Response(s, b, h), corr, head_only=False)
            return
        try:
            resp = self.server.router.dispatch("GET" if method == "HEAD" else method, self.path, self.headers, body)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            s, b, h = ct_error(500, "General", "Internal simulator error.")
            resp = Response(s, b, h)
            self.server.state.count("error", 500)
        self._send(resp, corr, head_only=method == "HEAD")
        if self.server.log_requests:
            self.log_request(resp.status, len(resp.body))

    def _send(self, resp: Response, corr: str, head_only: bool) -> None:
        body = resp.body
        if resp.transport == "truncate":
            body = body[: len(body) // 2]
        lines = [
            f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Date: {_http_date()}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(body)}",
            f"X-Correlation-ID: {corr}",
        ]
        lines.extend(f"{k}: {v}" for k, v in resp.headers)
        if self.close_connection or resp.transport == "reset":
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if head_only:
            self.wfile.write(head)
        elif resp.transport == "reset":
            self.wfile.write(head + body[: len(body) // 2])
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(head + body)


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState, log_requests: bool = False) -> None:
        self.state = state
        self.router = Router(state)
        self.log_requests = log_requests
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # skip HTTPServer.server_bind's socket.getfqdn(), which can stall on DNS
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------


class ChurnLoop(threading.Thread):
    """Background churn: every ``every_s`` seconds, what ``POST /_admin/churn`` with :data:`BACKGROUND_CHURN` does."""

    def __init__(self, router: Router, every_s: float) -> None:
        super().__init__(name="simulators-churn", daemon=True)
        self.router = router
        self.every_s = every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        body = orjson.dumps(BACKGROUND_CHURN)
        while not self.stopped.wait(self.every_s):
            reply = self.router.admin("POST", "/_admin/churn", body)
            if reply.status != 200:
                print(f"simulators: background churn failed: {reply.body.decode()}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=10)


#: a few changes of every kind per background churn round
BACKGROUND_CHURN = {"products": 3, "inventory": 10, "orders": 2, "payments": 2, "stock_movements": 10}


class SimulatorHandle:
    """A running simulator (see :func:`start_in_thread`)."""

    def __init__(self, server: SimulatorHTTPServer, thread: threading.Thread, churn: ChurnLoop | None = None) -> None:
        self.server = server
        self.thread = thread
        self.churn = churn
        self.state = server.state
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}"

    @property
    def commerce_url(self) -> str:
        return f"{self.url}/commerce"

    def stop(self) -> None:
        if self.churn is not None:
            self.churn.stop()
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()
        self.state.subscribe(None)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(
    host: str = "127.0.0.1",
    port: int = 8900,
    products: int = 1000,
    seed: int = 42,
    project_key: str = "beauty-hub",
    client_id: str = "hub-client",
    client_secret: str = "hub-secret",
    token_ttl: int = 172_800,
    log_requests: bool = False,
) -> SimulatorHTTPServer:
    """Build the world and bind the server (not yet serving)."""
    config = CommerceConfig(
        project_key=project_key, client_id=client_id, client_secret=client_secret, token_ttl=token_ttl
    )
    state = SimulatorState(products=products, seed=seed, commerce=config)
    state.subscribe(AmqpSubscription.from_environment())  # COMMERCE_SUBSCRIPTION_AMQP_URL, when set
    return SimulatorHTTPServer((host, port), state, log_requests=log_requests)


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    products: int = 1000,
    seed: int = 42,
    project_key: str = "beauty-hub",
    client_id: str = "hub-client",
    client_secret: str = "hub-secret",
    token_ttl: int = 172_800,
    log_requests: bool = False,
    churn_every: float | None = None,
) -> SimulatorHandle:
    """Start a simulator in a daemon thread of this process; ``port=0`` picks a free port.

    Returns a :class:`SimulatorHandle` with ``url``, ``host``, ``port``, ``commerce_url``, ``state``
    and ``stop()`` (also a context manager). ``churn_every`` seconds, when given, a background
    thread churns a few records of every system.
    """
    server = make_server(host, port, products, seed, project_key, client_id, client_secret, token_ttl, log_requests)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"simulators-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    churn = ChurnLoop(server.router, churn_every) if churn_every else None
    if churn is not None:
        churn.start()
    return SimulatorHandle(server, thread, churn)


def serve(
    host: str = "127.0.0.1",
    port: int = 8900,
    products: int = 1000,
    seed: int = 42,
    project_key: str = "beauty-hub",
    client_id: str = "hub-client",
    client_secret: str = "hub-secret",
    token_ttl: int = 172_800,
    quiet: bool = False,
    log_requests: bool = False,
    churn_every: float | None = None,
    faults: list | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM, with the fault rules `faults` on; returns the exit code (0 on a clean stop)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    handle = start_in_thread(
        host, port, products, seed, project_key, client_id, client_secret, token_ttl, log_requests, churn_every
    )
    handle.state.faults.configure(faults or [])
    print(
        f"simulators serving on {handle.url} (commerce project {project_key}, {products} products, seed {seed})",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            if not handle.thread.is_alive():
                print("simulators: server thread died", file=sys.stderr, flush=True)
                return 1
    finally:
        handle.stop()
    if not quiet:
        print("simulators stopped", flush=True)
    return 0
