"""The warehouse system (WMS): API-key auth, cursor-paged lists, the stock-movement feed and the CSV drops."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.http import ExternalSystemError, HttpClient, RetryPolicy

SYSTEM = "warehouse"
MAX_PAGE_SIZE = 1000
API_KEY_SETTING = "WAREHOUSE_API_KEY"
#: empty pages in a row that still give a next cursor before a listing fails
EMPTY_PAGE_ATTEMPTS = 3
API_URL_SETTING = "WAREHOUSE_API_URL"
LANDING_DIR_SETTING = "WAREHOUSE_LANDING_DIR"

Page = list[dict[str, Any]]


def format_timestamp(value: datetime) -> str:
    """The API's timestamp form: UTC, millisecond precision, `Z`."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MovementFeed:
    """The stock-movement feed after a cursor, a page at a time.

    `cursor` is where the pages yielded so far end (the cursor given, while nothing new was read):
    store it with the data they carried, and the next read starts right after them.
    """

    def __init__(self, resource: WarehouseResource, after: str | None):
        self._resource = resource
        self.cursor = after

    def __iter__(self) -> Iterator[Page]:
        limit = self._resource.page_size
        while True:
            params = {"limit": str(limit), **({"after": self.cursor} if self.cursor else {})}
            body = self._resource._get("/v1/stock-movements", params)
            page = body["data"]
            if page:
                self.cursor = body["next_cursor"]
                yield page
            if len(page) < limit:
                return


class WarehouseResource(dg.ConfigurableResource):
    """Reads the WMS API (lists by cursor, movements as a feed) and finds the supplier CSV drops."""

    api_url: str = Field(description="WMS API base URL, e.g. http://127.0.0.1:8900/warehouse (WAREHOUSE_API_URL).")
    api_key: str = Field(description="API key sent in the X-Api-Key header (WAREHOUSE_API_KEY, secret).")
    landing_dir: str = Field(
        default="data/landing/suppliers",
        description="Directory where the nightly supplier CSV feeds are dropped (WAREHOUSE_LANDING_DIR).",
    )
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    _api: HttpClient | None = PrivateAttr(default=None)

    def pages(self, resource: str, updated_since: datetime | None = None) -> Iterator[Page]:
        """Records of `resource` (`warehouses`, `stock-levels`, `suppliers`, `purchase-orders`) in
        (updated_at, id) order, optionally only those updated at or after `updated_since`.

        A record that changes during the export comes round again at its new version; the hub's
        version merge keeps the newest.
        """
        params = {"limit": str(self.page_size)}
        if updated_since is not None:
            params["updated_since"] = format_timestamp(updated_since)
        empty = 0
        while True:
            body = self._get(f"/v1/{resource}", params)
            if body["data"]:
                yield body["data"]
            if not body.get("next_cursor"):
                return
            empty = 0 if body["data"] else empty + 1
            if empty == EMPTY_PAGE_ATTEMPTS:
                raise ExternalSystemError(
                    SYSTEM,
                    f"GET /v1/{resource}",
                    f"{empty} empty pages in a row still gave a next cursor",
                    status=200,
                    attempts=empty,
                    setting=API_URL_SETTING,
                )
            params = {**params, "cursor": body["next_cursor"]}

    def movement_feed(self, after: str | None = None) -> MovementFeed:
        """The stock movements after cursor `after` (from the start when None)."""
        return MovementFeed(self, after)

    def get(self, resource: str, record_id: str) -> dict[str, Any]:
        return self._get(f"/v1/{resource}/{record_id}", None)

    def supplier_files(self) -> list[Path]:
        """The CSV files now in the landing directory, oldest name first (sub-folders are not read)."""
        folder = Path(self.landing_dir)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{SYSTEM}: the supplier landing directory {folder} does not exist (check {LANDING_DIR_SETTING})"
            )
        return sorted(p for p in folder.glob("*.csv") if p.is_file())

    def _get(self, path: str, params: dict[str, str] | None) -> dict[str, Any]:
        try:
            return self._client().get_json(path, params=params)
        except ExternalSystemError as exc:
            if exc.status in (401, 403):
                refusal = "has expired" if exc.code == "api_key_expired" else "was rejected"
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    f"the API key {refusal} ({exc.code or exc.status})",
                    status=exc.status,
                    attempts=exc.attempts,
                    setting=API_KEY_SETTING,
                    code=exc.code,
                ) from None
            raise

    def _client(self) -> HttpClient:
        if self._api is None:
            self._api = HttpClient(
                SYSTEM,
                self.api_url,
                setting=API_URL_SETTING,
                retry=RetryPolicy(self.max_attempts, self.backoff_initial_s, self.backoff_max_s),
                connect_timeout_s=self.connect_timeout_s,
                read_timeout_s=self.read_timeout_s,
                headers={"X-Api-Key": self.api_key},
            )
        return self._api
