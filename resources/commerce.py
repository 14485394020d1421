"""The commerce platform (commercetools API): OAuth client credentials and paged exports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import orjson
import simdjson
from pydantic import Field, PrivateAttr

from resources.http import ExternalSystemError, HttpClient, RetryPolicy, UnreadableBody, interleaved, prefetched

SYSTEM = "commerce"
MAX_PAGE_SIZE = 500
IDS_PER_QUERY = 100  # keeps a `where ... in (...)` query URL well under common 8 KiB limits
#: pages each export stream fetches ahead of its reader: enough to keep fetching while a chunk is typed
EXPORT_READ_AHEAD_PAGES = 8
#: how often an empty page whose total still counts records is asked again before the export fails
EMPTY_PAGE_ATTEMPTS = 3

Page = list[dict[str, Any]]
MessagePosition = tuple[str, str]
"""A message's place in the log: (createdAt, id)."""


def format_timestamp(value: datetime) -> str:
    """commercetools' timestamp form: UTC, millisecond precision, `Z`."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_AFTER_POSITION = "createdAt > :ts or (createdAt = :ts and id > :id)"


@dataclass(frozen=True)
class PageBody:
    """One page of a query as the API sent it: the JSON text, unparsed, and what paging needs of it."""

    text: str
    count: int
    last_id: str | None
    total: int | None
    fetched_at: datetime

    def records(self) -> Page:
        return orjson.loads(self.text)["results"]


def id_ranges(count: int) -> list[list[str]]:
    """`where` clauses of `count` disjoint id ranges that together hold every id, split evenly for
    commercetools' hexadecimal UUIDs (any other ids are still covered, if less evenly)."""
    edges = [f"{(16 * i) // count:x}" for i in range(1, count)]
    lower = [[], *([f'id >= "{edge}"'] for edge in edges)]
    upper = [*([f'id < "{edge}"'] for edge in edges), []]
    return [low + high for low, high in zip(lower, upper, strict=True)]


def read_page_body(body: bytes) -> PageBody:
    """A query response kept as text, with its record count, last id and total read by simdjson.

    simdjson checks the whole body and reads those three values without a Python object per record
    (about 3 GB/s, a tenth of a DuckDB query per page); the pipeline hands the text to DuckDB to land
    it. A body that is not a JSON page of results raises `UnreadableBody`.
    """
    try:
        text = body.decode()
        page = simdjson.Parser().parse(body)  # a parser of its own: it holds one document at a time
    except ValueError as exc:  # UnicodeDecodeError included
        raise UnreadableBody(f"not a JSON page ({type(exc).__name__})") from None
    results = page.get("results") if isinstance(page, simdjson.Object) else None
    if not isinstance(results, simdjson.Array):
        raise UnreadableBody("the page has no 'results' list")
    last = results[-1] if len(results) else None
    last_id = last.get("id") if isinstance(last, simdjson.Object) else None
    total = page.get("total")
    return PageBody(
        text,
        len(results),
        last_id if isinstance(last_id, str) else None,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
        datetime.now(UTC),
    )


class ClientCredentialsAuth:
    """OAuth2 client-credentials token, cached until shortly before it expires."""

    def __init__(self, client: HttpClient, client_id: str, client_secret: str, scope: str):
        self._client, self._scope = client, scope
        self._basic = (client_id, client_secret)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._fetch()
            return f"Bearer {self._token}"

    def invalidate(self, stale: str | None = None) -> bool:
        """Forget the token `stale` carried, unless another caller has already replaced it."""
        with self._lock:
            if stale is None or stale == f"Bearer {self._token}":
                self._token = None
        return True

    def _fetch(self) -> None:
        try:
            body = self._client.request_json(
                "POST",
                "/oauth/token",
                auth=self._basic,
                data={"grant_type": "client_credentials", "scope": self._scope},
            )
        except ExternalSystemError as exc:
            if exc.code == "invalid_client":
                raise ExternalSystemError(
                    SYSTEM,
                    "POST /oauth/token",
                    "the client id or secret was rejected (invalid_client)",
                    status=exc.status,
                    setting="COMMERCE_CLIENT_ID / COMMERCE_CLIENT_SECRET",
                    code=exc.code,
                ) from None
            if exc.code == "invalid_scope":
                raise ExternalSystemError(
                    SYSTEM,
                    "POST /oauth/token",
                    f"scope {self._scope!r} was refused (invalid_scope): unknown project key?",
                    status=exc.status,
                    setting="COMMERCE_PROJECT_KEY / COMMERCE_SCOPES",
                    code=exc.code,
                ) from None
            raise
        expires_in = float(body.get("expires_in", 0))
        self._token = body["access_token"]
        self._expires_at = time.monotonic() + expires_in - min(60.0, expires_in / 10)


class CommerceToolsResource(dg.ConfigurableResource):
    """Reads a commercetools project: full exports by keyset paging, incremental by lastModifiedAt."""

    project_key: str = Field(description="commercetools project key (COMMERCE_PROJECT_KEY).")
    api_url: str = Field(description="API base URL, without the project key (COMMERCE_API_URL).")
    auth_url: str = Field(description="OAuth base URL; the token endpoint is {auth_url}/oauth/token.")
    client_id: str = Field(description="API client id (COMMERCE_CLIENT_ID).")
    client_secret: str = Field(description="API client secret (COMMERCE_CLIENT_SECRET).")
    scopes: str = Field(default="", description="Space-separated scopes; default manage_project:{key}.")
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    export_streams: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Disjoint id ranges a full export (`export_bodies`) pages through at once.",
    )
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    _api: HttpClient | None = PrivateAttr(default=None)

    def export_pages(self, resource: str, where: Sequence[str] = ()) -> Iterator[Page]:
        """Every record of `resource`, a page at a time, by keyset paging on id.

        Offset paging stops at 10,000 and shifts when records change mid-export; `id > last`
        with `sort=id asc` does neither. The next page is fetched while the caller works on this one.
        """
        return prefetched(body.records() for body in self._export(resource, where))

    def export_bodies(self, resource: str, where: Sequence[str] = ()) -> Iterator[PageBody]:
        """The records of `export_pages` in pages as the API sent them, unparsed, for loaders that hand
        JSON text on; `export_streams` disjoint id ranges are paged at once, so the order is by id
        within each range only."""
        ranges = [[*where, *bounds] for bounds in id_ranges(self.export_streams)]
        return interleaved([self._export(resource, clauses) for clauses in ranges], depth=EXPORT_READ_AHEAD_PAGES)

    def _export(self, resource: str, where: Sequence[str]) -> Iterator[PageBody]:
        last_id: str | None = None
        sort = ("id asc",)
        while True:
            clauses = list(where)
            variables: dict[str, str] = {}
            if last_id is not None:
                clauses.append("id > :last_id")
                variables["last_id"] = last_id
            page = self._query(resource, clauses, variables, sort, with_total=False, read=read_page_body)
            if not page.count:
                page = self._confirm_empty(resource, clauses, variables, sort)
            if page.count:
                yield page
            if page.count < self.page_size:
                return
            if not isinstance(page.last_id, str):
                raise ExternalSystemError(
                    SYSTEM,
                    f"GET /{self.project_key}/{resource}",
                    "the last record of a full page has no string 'id': keyset paging cannot go on",
                    status=200,
                    setting="COMMERCE_API_URL",
                )
            last_id = page.last_id

    def changed_pages(self, resource: str, since: datetime) -> Iterator[Page]:
        """Records of `resource` modified at or after `since`, oldest first, a page at a time.

        Keyset paging on (lastModifiedAt, id) survives millisecond ties; records that change during
        the export and come round again are skipped by (id, version).
        """
        seen: set[tuple[str, int]] = set()
        variables = {"since": format_timestamp(since)}
        clauses = ["lastModifiedAt >= :since"]
        while True:
            sort = ("lastModifiedAt asc", "id asc")
            page = (
                self._list(resource, clauses, variables, sort)
                or self._confirm_empty(resource, clauses, variables, sort).records()
            )
            fresh = [r for r in page if (r["id"], r["version"]) not in seen]
            seen.update((r["id"], r["version"]) for r in fresh)
            if fresh:
                yield fresh
            if len(page) < self.page_size:
                return
            last = page[-1]
            variables = {**variables, "ts": last["lastModifiedAt"], "id": last["id"]}
            clauses = [
                "lastModifiedAt >= :since",
                "lastModifiedAt > :ts or (lastModifiedAt = :ts and id > :id)",
            ]

    def message_pages(self, after: MessagePosition | None, lookback: timedelta = timedelta(0)) -> Iterator[Page]:
        """Messages after position `after`, in (createdAt, id) order, a page at a time.

        Keyset paging on (createdAt, id) has no gaps at ties. A `lookback` re-reads messages created
        up to that long before `after`, for messages that became visible late; callers dedupe by id.
        """
        clauses: list[str] = []
        variables: dict[str, str] = {}
        if after is not None and lookback > timedelta(0):
            since = datetime.fromisoformat(after[0]) - lookback
            clauses, variables = ["createdAt >= :since"], {"since": format_timestamp(since)}
        elif after is not None:
            clauses, variables = [_AFTER_POSITION], {"ts": after[0], "id": after[1]}
        while True:
            page = self._list("messages", clauses, variables, sort=("createdAt asc", "id asc"))
            if page:
                yield page
            if len(page) < self.page_size:
                return
            clauses, variables = [_AFTER_POSITION], {"ts": page[-1]["createdAt"], "id": page[-1]["id"]}

    def fetch_by_ids(self, resource: str, values: Sequence[str], field: str = "id") -> Iterator[Page]:
        """The records of `resource` whose `field` (id, or sku for inventory) is one of `values`.

        Queries `where {field} in :values` for a chunk of values at a time, never a full export;
        values with no record are simply absent.
        """
        wanted = sorted(set(values))
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            clauses, variables = [f"{field} in :values"], {"values": chunk}
            while True:
                page = self._list(resource, clauses, variables, sort=("id asc",))
                if page:
                    yield page
                if len(page) < self.page_size:
                    break
                clauses = [f"{field} in :values", "id > :last_id"]
                variables = {"values": chunk, "last_id": page[-1]["id"]}

    def get(self, resource: str, record_id: str) -> dict[str, Any]:
        return self._client().get_json(f"/{self.project_key}/{resource}/{record_id}")

    def _confirm_empty(
        self, resource: str, where: Sequence[str], variables: Mapping[str, str], sort: Sequence[str]
    ) -> PageBody:
        """An empty page ends an export only when a count agrees: a page that is empty while its total
        still counts records is asked again, a few times, then the export fails rather than stop short."""
        total = 0
        for _ in range(EMPTY_PAGE_ATTEMPTS):
            page = self._query(resource, where, variables, sort, with_total=True, read=read_page_body)
            total = page.total or 0
            if page.count or not total:
                return page
        raise ExternalSystemError(
            SYSTEM,
            f"GET /{self.project_key}/{resource}",
            f"the page stayed empty while its total counted {total} more record(s)",
            status=200,
            attempts=EMPTY_PAGE_ATTEMPTS,
            setting="COMMERCE_API_URL",
        )

    def _list(
        self, resource: str, where: Sequence[str], variables: Mapping[str, str | Sequence[str]], sort: Sequence[str]
    ) -> Page:
        return self._query(resource, where, variables, sort, with_total=False)["results"]

    def _query(
        self,
        resource: str,
        where: Sequence[str],
        variables: Mapping[str, str | Sequence[str]],
        sort: Sequence[str],
        with_total: bool,
        read: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        params: list[tuple[str, str]] = [("limit", str(self.page_size)), ("withTotal", str(with_total).lower())]
        params += [("sort", s) for s in sort]
        params += [("where", w) for w in where]
        params += [(f"var.{k}", v) for k, vs in variables.items() for v in ([vs] if isinstance(vs, str) else vs)]
        try:
            body = self._client().get_json(f"/{self.project_key}/{resource}", params=params, read=read)
        except ExternalSystemError as exc:
            if exc.status == 404 and exc.code == "ResourceNotFound":
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    f"project {self.project_key!r} or resource {resource!r} not found",
                    status=404,
                    setting="COMMERCE_PROJECT_KEY",
                    code=exc.code,
                ) from None
            raise
        return body

    def _client(self) -> HttpClient:
        if self._api is None:
            retry = RetryPolicy(self.max_attempts, self.backoff_initial_s, self.backoff_max_s)
            timeouts = {"connect_timeout_s": self.connect_timeout_s, "read_timeout_s": self.read_timeout_s}
            token_client = HttpClient(SYSTEM, self.auth_url, setting="COMMERCE_AUTH_URL", retry=retry, **timeouts)
            scope = self.scopes or f"manage_project:{self.project_key}"
            auth = ClientCredentialsAuth(token_client, self.client_id, self.client_secret, scope)
            self._api = HttpClient(SYSTEM, self.api_url, setting="COMMERCE_API_URL", auth=auth, retry=retry, **timeouts)
        return self._api
