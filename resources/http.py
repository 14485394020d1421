"""The one place for HTTP: a pooled session, timeouts, retries with backoff and jitter, auth refresh.

Every source-system resource builds an `HttpClient`. Transient failures (429, 5xx gateway errors,
connection errors, read timeouts, bodies cut short) are retried with exponential backoff and jitter
by tenacity, honouring `Retry-After`. A 401 triggers one auth refresh through the `Auth` hook.
Errors name the system, the endpoint (never its query string), the status and the attempts, and
never carry a credential.
"""

from __future__ import annotations

import collections
import email.utils
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")
R = TypeVar("R")


class ExternalSystemError(RuntimeError):
    """A call to an external system failed for good. The message is safe to log."""

    def __init__(
        self,
        system: str,
        endpoint: str,
        detail: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        setting: str | None = None,
        code: str | None = None,
    ):
        self.system, self.endpoint, self.status, self.attempts = system, endpoint, status, attempts
        self.code = code
        where = f"HTTP {status}" if status is not None else "no response"
        hint = f" (check {setting})" if setting else ""
        super().__init__(f"{system}: {endpoint} failed after {attempts} attempt(s), {where}: {detail}{hint}")


class UnreadableBody(ValueError):
    """A response body its reader cannot read (cut short, not JSON): retried like a dropped connection."""


class Auth(Protocol):
    """Pluggable auth: gives the Authorization header and can be told the credential went stale."""

    def header(self) -> str: ...

    def invalidate(self, stale: str | None) -> bool:
        """`stale` (a header `header()` gave) was refused; True when the next header is a new credential."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


class _Transient(Exception):
    """A retryable answer; carries the server's Retry-After wish, if any."""

    def __init__(self, status: int | None, detail: str, retry_after_s: float | None = None):
        super().__init__(detail)
        self.status, self.detail, self.retry_after_s = status, detail, retry_after_s


_TRANSIENT_ERRORS = (
    _Transient,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    orjson.JSONDecodeError,
    UnreadableBody,
)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpClient:
    """JSON over HTTP for one external system, with retries and auth refresh."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        setting: str,
        auth: Auth | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        pool_size: int = 8,
        headers: Mapping[str, str] | None = None,
    ):
        self.system, self.base_url, self.setting = system, base_url.rstrip("/"), setting
        self.auth, self.retry = auth, retry
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", **(headers or {})})
        # The environment's proxies (HTTP(S)_PROXY, NO_PROXY) and CA bundle, read once for this base URL:
        # requests reads them, and ~/.netrc, on every request otherwise (a tenth of an export's CPU).
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._backoff = wait_exponential_jitter(initial=retry.backoff_initial_s, max=retry.backoff_max_s)

    def close(self) -> None:
        self.session.close()

    def get_json(self, path: str, params: Any = None, read: Callable[[bytes], Any] = orjson.loads) -> Any:
        return self.request_json("GET", path, params=params, read=read)

    def request_json(
        self, method: str, path: str, *, read: Callable[[bytes], Any] = orjson.loads, **kwargs: Any
    ) -> Any:
        """Send a request and `read` its JSON body (parsed by orjson by default), retrying transient failures.

        A `read` that cannot read a body raises `UnreadableBody` (or orjson's error): the request is retried.
        """
        endpoint = f"{method} {path}"
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _TRANSIENT_ERRORS)),
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return self._attempt(method, path, endpoint, attempts, read, **kwargs)
        except _Transient as exc:
            raise ExternalSystemError(
                self.system, endpoint, exc.detail, status=exc.status, attempts=attempts, setting=self.setting
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ExternalSystemError(
                self.system,
                endpoint,
                f"{type(exc).__name__}: cannot reach {self.base_url}",
                attempts=attempts,
                setting=self.setting,
            ) from None
        except (requests.exceptions.RequestException, orjson.JSONDecodeError, UnreadableBody) as exc:
            raise ExternalSystemError(
                self.system, endpoint, f"unreadable response ({type(exc).__name__})", attempts=attempts
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self, method: str, path: str, endpoint: str, attempts: int, read: Callable[[bytes], Any], **kwargs: Any
    ) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self.auth is not None:
            renewed = self.auth.invalidate(response.request.headers.get("Authorization"))
            response = self._send(method, path, **kwargs)
            if response.status_code == 401 and renewed:  # revoked again at once (a parallel stream renewed it)
                raise _Transient(401, _error_summary(response))
        if response.status_code in TRANSIENT_STATUSES:
            raise _Transient(
                response.status_code,
                _error_summary(response),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            body = _json_or_none(response)
            raise ExternalSystemError(
                self.system,
                endpoint,
                _error_summary(response),
                status=response.status_code,
                attempts=attempts,
                setting=self.setting,
                code=_error_code(body),
            )
        return read(response.content) if response.content else None

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.auth is not None:
            headers["Authorization"] = self.auth.header()
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout, **kwargs)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.retry.backoff_max_s)
        return self._backoff(state)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _error_code(body: Any) -> str | None:
    """The error code from a commercetools-, OAuth-, Stripe- or Google-shaped error body."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), str):
        return body["error"]
    if isinstance(body.get("error"), dict):
        error = body["error"]
        codes = (error.get("code"), error.get("status"), error.get("type"))
        return next((code for code in codes if isinstance(code, str)), None)
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0].get("code")
    return None


def _error_summary(response: requests.Response) -> str:
    body = _json_or_none(response)
    code = _error_code(body)
    message = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description")
        if isinstance(body.get("error"), dict):
            message = body["error"].get("message")
    parts = [p for p in (code, message) if p]
    return ": ".join(str(p)[:300] for p in parts) or response.reason or "error"


#: How long a Python thread holds the GIL while others wait, as long as read-ahead threads run (Python's
#: default is 5 ms). DuckDB's Python client takes the GIL several times per query and each time waits
#: out the slice of a thread busy in Python: 14 inserts of product documents beside one busy thread
#: took 1.1 s at 5 ms and 0.37 s at 1 ms (0.14 s alone); the full sync at 50,000 products 23-27 s
#: before, 21 s after.
READ_AHEAD_SWITCH_INTERVAL_S = 0.001


class _ShortGilSlices:
    """`sys.setswitchinterval` lowered while any read-ahead runs, restored when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0.0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, READ_AHEAD_SWITCH_INTERVAL_S))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    sys.setswitchinterval(self._saved)


_short_gil_slices = _ShortGilSlices().held


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items` in order, produced up to `depth` ahead by a thread: the next page is on the wire while the caller works.

    An error raised by `items` is raised here, where it would have been. Closing the returned generator
    stops the thread once its current item is done.
    """
    return interleaved([items], depth)


def mapped_ahead(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`function` of each item, in order, computed by `workers` threads at once, at most `workers` items ahead.

    For work that releases the GIL (DuckDB queries): `ThreadPoolExecutor.map` would take every item first.
    An error is raised here, in order; closing the returned generator cancels what has not started.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="mapped_ahead")
    pending: collections.deque[Future[R]] = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def interleaved(streams: Sequence[Iterator[T]], depth: int = 2) -> Iterator[T]:
    """The items of every stream, each produced by a thread of its own, in the order they arrive.

    Each stream keeps its own order and runs up to `depth` items ahead of the caller. The first error
    of any stream is raised here, after the other streams are stopped; closing the returned generator
    stops every thread once its current item is done. Meanwhile Python threads take turns on the GIL
    every `READ_AHEAD_SWITCH_INTERVAL_S`.
    """
    buffer: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth * len(streams))
    stopped = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stopped.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(items: Iterator[T]) -> None:
        try:
            for item in items:
                if not put((False, item)):
                    return
            put((True, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((True, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    threads = [threading.Thread(target=produce, args=(s,), name="prefetch", daemon=True) for s in streams]
    with _short_gil_slices():
        for thread in threads:
            thread.start()
        try:
            running = len(threads)
            while running:
                done, value = buffer.get()
                if not done:
                    yield value
                    continue
                if value is not None:
                    raise value
                running -= 1
        finally:
            stopped.set()
            for thread in threads:
                thread.join()
