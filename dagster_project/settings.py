"""Settings from the environment, with embedded defaults that need no setup.

A variable that is set is passed to Dagster as an `EnvVar`, so its value is read at run time and
never shown in the UI or written to the run config. Unset, the embedded default applies: the
simulators on 127.0.0.1:8900 and a DuckDB hub in data/hub.duckdb.
"""

import os

import dagster as dg

from resources.alerts import AlertWebhookResource
from resources.analytics import AnalyticsResource
from resources.commerce import CommerceToolsResource
from resources.hub import HubResource
from resources.payments import StripeResource
from resources.pii import PiiHashResource
from resources.queue import CommerceQueueResource
from resources.rules import RulesResource
from resources.warehouse import WarehouseResource

# `python -m simulators run -- COMMAND` tells COMMAND where the simulators listen (make demo / make ui SIM_PORT=...).
SIMULATOR_URL = os.environ.get("SIMULATORS_URL", "http://127.0.0.1:8900")
EMBEDDED = {
    "HUB_URL": "duckdb:///data/hub.duckdb",
    "COMMERCE_API_URL": f"{SIMULATOR_URL}/commerce",
    "COMMERCE_AUTH_URL": f"{SIMULATOR_URL}/commerce",
    "COMMERCE_PROJECT_KEY": "beauty-hub",
    "COMMERCE_CLIENT_ID": "hub-client",
    "COMMERCE_SCOPES": "",
    "PAYMENTS_API_URL": f"{SIMULATOR_URL}/payments",
    "WAREHOUSE_API_URL": f"{SIMULATOR_URL}/warehouse",
    "WAREHOUSE_LANDING_DIR": "data/landing/suppliers",
    "ANALYTICS_API_URL": f"{SIMULATOR_URL}/analytics/v1",
    "ANALYTICS_PROPERTY_ID": "123456789",
    "ALERT_WEBHOOK_URL": "",
    "COMMERCE_SUBSCRIPTION_AMQP_URL": "",
    "COMMERCE_SUBSCRIPTION_QUEUE": "commerce-messages",
    "RULES_FILE": "dagster_project/rules.yaml",
}
# The simulators' demo credentials; each is used only while its system's URL is left at the simulator.
SIMULATOR_SECRETS = {
    "COMMERCE_CLIENT_SECRET": ("COMMERCE_API_URL", "hub-secret"),
    "PAYMENTS_API_KEY": ("PAYMENTS_API_URL", "sk_test_hub"),
    "WAREHOUSE_API_KEY": ("WAREHOUSE_API_URL", "wh_test_hub"),
    "ANALYTICS_API_KEY": ("ANALYTICS_API_URL", "an_test_hub"),
    # Real commerce data means real personal data: then the salt must be a secret of its own.
    "PII_HASH_SALT": ("COMMERCE_API_URL", "embedded-demo-salt-not-for-production"),
}


def setting(name: str) -> str | dg.EnvVar:
    return dg.EnvVar(name) if name in os.environ else EMBEDDED[name]


def secret(name: str) -> str | dg.EnvVar:
    """A secret comes from the environment, except against the embedded simulators."""
    if name in os.environ:
        return dg.EnvVar(name)
    real_system, embedded = SIMULATOR_SECRETS[name]
    if real_system in os.environ:
        raise ValueError(f"{name} must be set when {real_system} points at a real system")
    return embedded


def hub_resource() -> HubResource:
    return HubResource(url=setting("HUB_URL"))


def commerce_resource() -> CommerceToolsResource:
    return CommerceToolsResource(
        project_key=setting("COMMERCE_PROJECT_KEY"),
        api_url=setting("COMMERCE_API_URL"),
        auth_url=setting("COMMERCE_AUTH_URL"),
        client_id=setting("COMMERCE_CLIENT_ID"),
        client_secret=secret("COMMERCE_CLIENT_SECRET"),
        scopes=setting("COMMERCE_SCOPES"),
    )


def payments_resource() -> StripeResource:
    return StripeResource(api_url=setting("PAYMENTS_API_URL"), api_key=secret("PAYMENTS_API_KEY"))


def warehouse_resource() -> WarehouseResource:
    return WarehouseResource(
        api_url=setting("WAREHOUSE_API_URL"),
        api_key=secret("WAREHOUSE_API_KEY"),
        landing_dir=setting("WAREHOUSE_LANDING_DIR"),
    )


def analytics_resource() -> AnalyticsResource:
    return AnalyticsResource(
        api_url=setting("ANALYTICS_API_URL"),
        property_id=setting("ANALYTICS_PROPERTY_ID"),
        api_key=secret("ANALYTICS_API_KEY"),
    )


def pii_resource() -> PiiHashResource:
    return PiiHashResource(salt=secret("PII_HASH_SALT"))


def alert_webhook_resource() -> AlertWebhookResource:
    return AlertWebhookResource(url=setting("ALERT_WEBHOOK_URL"))


def rules_resource() -> RulesResource:
    return RulesResource(path=setting("RULES_FILE"))


def commerce_queue_resource() -> CommerceQueueResource:
    """The commerce subscription queue; its URL carries the broker password, so it is read as an EnvVar."""
    return CommerceQueueResource(
        url=setting("COMMERCE_SUBSCRIPTION_AMQP_URL"), queue=setting("COMMERCE_SUBSCRIPTION_QUEUE")
    )
