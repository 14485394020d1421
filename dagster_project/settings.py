"""Settings from the environment, with embedded defaults that need no setup.

A variable that is set is passed to Dagster as an `EnvVar`, so its value is read at run time and
never shown in the UI or written to the run config. Unset, the embedded default applies: the
simulators on 127.0.0.1:8900 and a DuckDB hub in data/hub.duckdb.
"""

from __future__ import annotations

import os

import dagster as dg

from resources.alerts import AlertWebhookResource
from resources.commerce import CommerceToolsResource
from resources.hub import HubResource

SIMULATOR_URL = "http://127.0.0.1:8900"
EMBEDDED = {
    "HUB_URL": "duckdb:///data/hub.duckdb",
    "COMMERCE_API_URL": f"{SIMULATOR_URL}/commerce",
    "COMMERCE_AUTH_URL": f"{SIMULATOR_URL}/commerce",
    "COMMERCE_PROJECT_KEY": "beauty-hub",
    "COMMERCE_CLIENT_ID": "hub-client",
    "COMMERCE_SCOPES": "",
    "ALERT_WEBHOOK_URL": "",
}
# The simulator's demo credential; used only while COMMERCE_API_URL is left at the simulator.
SIMULATOR_CLIENT_SECRET = "hub-secret"


def setting(name: str) -> str | dg.EnvVar:
    return dg.EnvVar(name) if name in os.environ else EMBEDDED[name]


def secret(name: str, *, unless_set: str, embedded: str) -> str | dg.EnvVar:
    """A secret comes from the environment, except against the embedded simulator."""
    if name in os.environ:
        return dg.EnvVar(name)
    if unless_set in os.environ:
        raise ValueError(f"{name} must be set when {unless_set} points at a real system")
    return embedded


def hub_resource() -> HubResource:
    return HubResource(url=setting("HUB_URL"))


def commerce_resource() -> CommerceToolsResource:
    return CommerceToolsResource(
        project_key=setting("COMMERCE_PROJECT_KEY"),
        api_url=setting("COMMERCE_API_URL"),
        auth_url=setting("COMMERCE_AUTH_URL"),
        client_id=setting("COMMERCE_CLIENT_ID"),
        client_secret=secret("COMMERCE_CLIENT_SECRET", unless_set="COMMERCE_API_URL", embedded=SIMULATOR_CLIENT_SECRET),
        scopes=setting("COMMERCE_SCOPES"),
    )


def alert_webhook_resource() -> AlertWebhookResource:
    return AlertWebhookResource(url=setting("ALERT_WEBHOOK_URL"))
