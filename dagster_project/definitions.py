"""The code location: assets, checks, jobs, schedules, sensors and resources, wired once."""

import dagster as dg

from assets.aggregation import aggregation_assets
from assets.analytics import analytics_assets
from assets.commerce import commerce_assets
from assets.finance import finance_assets
from assets.forecasting import forecasting_assets
from assets.inventory import inventory_assets
from assets.orders import orders_assets
from assets.payments import payments_assets
from assets.sourcing import sourcing_assets
from assets.warehouse import warehouse_assets
from dagster_project import settings
from pipelines.freshness import with_freshness
from pipelines.jobs import (
    analytics_daily_job,
    commerce_changes_job,
    full_sync_job,
    incremental_sync_job,
    quarantine_release_job,
    serving_job,
)
from pipelines.replay import replay_inventory_job
from pipelines.schedules import schedules
from pipelines.sensors.commerce_messages import commerce_messages_sensor
from pipelines.sensors.commerce_queue import commerce_queue_sensor
from pipelines.sensors.failures import build_failure_alert_sensor
from pipelines.sensors.payment_events import payment_events_apply_job, payment_events_sensor
from pipelines.sensors.quality_report import quality_report_job, quality_report_sensors
from pipelines.sensors.supplier_files import supplier_file_job, supplier_file_sensor
from pipelines.sensors.warehouse_movements import warehouse_movements_job, warehouse_movements_sensor
from quality.aggregation import AGGREGATION_SUITES
from quality.analytics import ANALYTICS_SUITES
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from quality.drift import build_schema_drift_checks
from quality.finance import FINANCE_SUITES
from quality.forecasting import FORECASTING_SUITES
from quality.inventory import INVENTORY_SUITES
from quality.orders import ORDERS_SUITES
from quality.payments import PAYMENTS_SUITES
from quality.report import quality_report
from quality.sourcing import SOURCING_CHECKS, SOURCING_SUITES
from quality.warehouse import WAREHOUSE_SUITES
from resources.hub import HUB_POOL

source_assets = [*commerce_assets, *orders_assets, *payments_assets, *warehouse_assets, *analytics_assets]
serving_assets = [*inventory_assets, *sourcing_assets, *aggregation_assets, *finance_assets, *forecasting_assets]
all_assets = [*source_assets, *serving_assets]
suites = [
    *COMMERCE_SUITES,
    *ORDERS_SUITES,
    *PAYMENTS_SUITES,
    *WAREHOUSE_SUITES,
    *ANALYTICS_SUITES,
    *INVENTORY_SUITES,
    *SOURCING_SUITES,
    *AGGREGATION_SUITES,
    *FINANCE_SUITES,
    *FORECASTING_SUITES,
]

defs = dg.Definitions(
    assets=[*with_freshness(all_assets), quality_report],
    asset_checks=[
        *build_suite_checks(suites, pool=HUB_POOL),
        *SOURCING_CHECKS,
        *build_schema_drift_checks([key for asset in source_assets for key in asset.keys]),
    ],
    jobs=[
        full_sync_job,
        incremental_sync_job,
        analytics_daily_job,
        serving_job,
        supplier_file_job,
        quality_report_job,
        commerce_changes_job,
        replay_inventory_job,
        payment_events_apply_job,
        warehouse_movements_job,
        quarantine_release_job,
    ],
    schedules=schedules,
    sensors=[
        build_failure_alert_sensor(all_assets),
        supplier_file_sensor,
        *quality_report_sensors,
        commerce_messages_sensor,
        commerce_queue_sensor,
        payment_events_sensor,
        warehouse_movements_sensor,
    ],
    resources={
        "hub": settings.hub_resource(),
        "commerce": settings.commerce_resource(),
        "payments": settings.payments_resource(),
        "warehouse": settings.warehouse_resource(),
        "analytics": settings.analytics_resource(),
        "pii": settings.pii_resource(),
        "rules": settings.rules_resource(),
        "alert_webhook": settings.alert_webhook_resource(),
        "commerce_queue": settings.commerce_queue_resource(),
    },
)
