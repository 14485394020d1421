"""Dagster's own storage on Postgres, configured by deploy/dagster.yaml."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.commerce import commerce_assets
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from resources.hub import HubResource
from tests.conftest import postgres_database

DEPLOY = Path(__file__).parent.parent / "deploy"


def test_a_materialization_is_stored_in_postgres(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: HubResource, commerce
):
    # A DAGSTER_HOME of its own: the instance keeps compute logs beside its dagster.yaml.
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    with postgres_database() as url:
        monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql://", "postgresql+psycopg2://", 1))
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            result = dg.materialize(
                [*commerce_assets, *build_suite_checks(COMMERCE_SUITES)],
                resources={"hub": hub, "commerce": commerce},
                instance=instance,
            )
            assert result.success
            stored = instance.get_latest_materialization_event(dg.AssetKey(["core", "products"]))
            assert stored is not None and stored.run_id == result.run_id
            row_count = stored.asset_materialization.metadata["dagster/row_count"].value
            assert row_count == hub.scalar("SELECT count(*) FROM core.products") > 0
            assert instance.get_run_by_id(result.run_id).is_success
