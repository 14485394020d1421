"""Where alerts go besides ops.alerts: an optional webhook (ALERT_WEBHOOK_URL)."""

from typing import Any

import dagster as dg
from pydantic import Field

from resources.http import HttpClient, RetryPolicy


class AlertWebhookResource(dg.ConfigurableResource):
    """Posts each alert as JSON to a webhook; does nothing while `url` is empty."""

    url: str = Field(default="", description="ALERT_WEBHOOK_URL: where alerts are posted; empty to disable.")
    max_attempts: int = 3

    def post(self, alert: dict[str, Any]) -> bool:
        if not self.url:
            return False
        client = HttpClient(
            "alert webhook", self.url, setting="ALERT_WEBHOOK_URL", retry=RetryPolicy(self.max_attempts)
        )
        try:
            client.request_json("POST", "", json=alert)
        finally:
            client.close()
        return True
