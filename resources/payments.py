"""The payment gateway (Stripe API): cursor-paged lists of charges, refunds, disputes and the rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.http import ExternalSystemError, HttpClient, RetryPolicy

SYSTEM = "payments"
MAX_PAGE_SIZE = 100
#: how often an empty page that says `has_more` is asked again before the listing fails
EMPTY_PAGE_ATTEMPTS = 3
OBJECTS = ("charges", "refunds", "disputes", "payment_intents", "balance_transactions", "events")

Page = list[dict[str, Any]]


def unix_seconds(value: datetime | int) -> int:
    """Stripe's `created` form: whole unix seconds (a datetime must carry a time zone)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone")
        return int(value.timestamp())
    return int(value)


class StripeResource(dg.ConfigurableResource):
    """Reads a Stripe account: every list newest first, a page at a time, by `starting_after` cursors."""

    api_url: str = Field(description="API base URL, without /v1 (PAYMENTS_API_URL), e.g. https://api.stripe.com.")
    api_key: str = Field(description="Secret or restricted API key, sk_... or rk_... (PAYMENTS_API_KEY).")
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    _api: HttpClient | None = PrivateAttr(default=None)

    def list_pages(self, object_name: str, created_gte: datetime | int | None = None) -> Iterator[Page]:
        """Every `object_name` object (created at or after `created_gte`), newest first, a page at a time.

        Objects created during the export land before the cursor, so paging never skips or repeats
        one; they are picked up by the next run.
        """
        if object_name not in OBJECTS:
            raise ValueError(f"unknown Stripe object list {object_name!r}; known: {', '.join(OBJECTS)}")
        params: dict[str, Any] = {"limit": self.page_size}
        if created_gte is not None:
            params["created[gte]"] = unix_seconds(created_gte)
        empty = 0
        while True:
            body = self._get(f"/v1/{object_name}", params)
            page = body["data"]
            if page:
                yield page
            if not body.get("has_more"):
                return
            if not page:  # claims more but gave nothing: ask again, a few times, never stop short
                empty += 1
                if empty == EMPTY_PAGE_ATTEMPTS:
                    raise ExternalSystemError(
                        SYSTEM,
                        f"GET /v1/{object_name}",
                        "the page stayed empty while has_more said more followed",
                        status=200,
                        attempts=empty,
                        setting="PAYMENTS_API_URL",
                    )
                continue
            empty = 0
            params = {**params, "starting_after": page[-1]["id"]}

    def get(self, object_name: str, object_id: str) -> dict[str, Any]:
        return self._get(f"/v1/{object_name}/{object_id}", None)

    def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        try:
            return self._client().get_json(path, params=params)
        except ExternalSystemError as exc:
            if exc.status in (401, 403):
                reason = "expired (api_key_expired)" if exc.code == "api_key_expired" else "rejected"
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    f"the API key was {reason}",
                    status=exc.status,
                    attempts=exc.attempts,
                    setting="PAYMENTS_API_KEY",
                    code=exc.code,
                ) from None
            raise

    def _client(self) -> HttpClient:
        if self._api is None:
            self._api = HttpClient(
                SYSTEM,
                self.api_url,
                setting="PAYMENTS_API_URL",
                retry=RetryPolicy(self.max_attempts, self.backoff_initial_s, self.backoff_max_s),
                connect_timeout_s=self.connect_timeout_s,
                read_timeout_s=self.read_timeout_s,
                headers={"Authorization": f"Bearer {self.api_key}"},
            )
        return self._api
