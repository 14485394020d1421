"""The supplier file sensor: one run per new file, archived when loaded, rejected with a reason when refused."""

import hashlib
import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.warehouse import OFFER_COLUMNS
from pipelines.sensors.supplier_files import supplier_file_job, supplier_file_sensor
from resources.hub import HubResource
from resources.warehouse import WarehouseResource
from simulators.feeds import write_supplier_feed
from simulators.world import World
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED

GOOD, BAD_ROWS, WRONG_HEADER = "2026-11-24", "2026-11-25", "2026-11-26"
WRONG_COLUMNS = "supplier,supplier_sku,sku,cost,currency,min_order_qty,available_to_promise"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def tick(instance: dg.DagsterInstance, landing: Path) -> list[dg.RunRequest]:
    # The sensor reads only the landing directory; the API settings are never used by it.
    warehouse = WarehouseResource(api_url="http://127.0.0.1:9/warehouse", api_key="unused", landing_dir=str(landing))
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = supplier_file_sensor(context)
    return [] if isinstance(result, dg.SkipReason) else list(result)


def execute(request: dg.RunRequest, instance: dg.DagsterInstance, hub: HubResource) -> dg.ExecuteInProcessResult:
    """Run the requested job as the daemon would: its run config and tags, on the same instance."""
    return supplier_file_job.execute_in_process(
        run_config=request.run_config,
        resources={"hub": hub},
        instance=instance,
        tags=request.tags,
        raise_on_error=False,
    )


def key(path: Path) -> str:
    return f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def count(hub: HubResource, table: str) -> int:
    return int(hub.scalar(f"SELECT count(*) FROM {table}")) if hub.backend.table_exists(table) else 0


def test_good_bad_row_and_wrong_header_files(hub: HubResource, landing: Path, tmp_path: Path):
    world = World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS)
    good = write_supplier_feed(landing, GOOD, world, bad_rows=0)
    bad = write_supplier_feed(landing, BAD_ROWS, world, bad_rows=7)
    wrong = landing / f"suppliers_{WRONG_HEADER}.csv"
    wrong.write_text(f"{WRONG_COLUMNS}\nSUP-LUM,X1,LUM-000001-01,1.00,EUR,1,5\n")
    (landing / f".suppliers_{WRONG_HEADER}.csv.partial").write_text("supplier_id,supp")  # still being written
    keep = tmp_path / "kept.csv"
    shutil.copy(good.path, keep)
    expected_keys = [key(good.path), key(bad.path), key(wrong)]

    with dg.instance_for_test() as instance:
        requests = tick(instance, landing)
        assert [r.run_key for r in requests] == expected_keys
        assert tick(instance, landing) == requests  # nothing moves until a run has loaded the file
        configs = [r.run_config["ops"]["load_supplier_file_op"]["config"] for r in requests]
        assert [Path(c["path"]).name for c in configs] == [good.path.name, bad.path.name, wrong.name]

        results = [execute(r, instance, hub) for r in requests]
        assert [r.success for r in results] == [True, True, False]
        # The later feed replaces the offers of the suppliers it carries (every supplier here).
        loaded = hub.read_frame("SELECT source_file, count(*) AS n FROM core.supplier_offers GROUP BY 1")
        assert dict(loaded.values.tolist()) == {bad.path.name: bad.rows - 7}
        assert count(hub, "quality.quarantine") == 7
        sources = hub.read_frame("SELECT DISTINCT source FROM quality.quarantine")["source"].tolist()
        assert sources == [bad.path.name]

        materialized = {
            e.materialization.metadata["file"].value: e.materialization.metadata
            for r in results[:2]
            for e in r.get_asset_materialization_events()
        }
        assert materialized[good.path.name]["rows_loaded"].value == good.rows
        assert materialized[good.path.name]["rows_changed"].value == good.rows
        assert materialized[bad.path.name]["rows_quarantined"].value == 7
        failure = next(e for e in results[2].all_events if e.event_type_value == "STEP_FAILURE")
        assert "wrong header" in failure.step_failure_data.user_failure_data.description

        assert sorted(p.name for p in landing.iterdir() if not p.name.startswith(".")) == ["archive", "rejected"]
        assert sorted(p.name for p in (landing / "archive").iterdir()) == [good.path.name, bad.path.name]
        assert sorted(p.name for p in (landing / "rejected").iterdir()) == [wrong.name, f"{wrong.name}.reason"]
        reason = (landing / "rejected" / f"{wrong.name}.reason").read_text()
        assert f"expected columns {', '.join(OFFER_COLUMNS)}" in reason
        assert f"found {WRONG_COLUMNS.replace(',', ', ')}" in reason
        assert (landing / f".suppliers_{WRONG_HEADER}.csv.partial").exists()

        assert tick(instance, landing) == []  # a second tick: nothing new

        before = hub.read_frame("SELECT * FROM core.supplier_offers ORDER BY 1, 2").drop(columns=["_loaded_at"])
        shutil.copy(keep, landing / good.path.name)  # the same file dropped again
        assert tick(instance, landing) == []
        after = hub.read_frame("SELECT * FROM core.supplier_offers ORDER BY 1, 2").drop(columns=["_loaded_at"])
        assert after.equals(before)
        assert not (landing / good.path.name).exists()
        first_run = results[0].run_id
        duplicate_reason = (landing / "rejected" / f"{good.path.name}.reason").read_text()
        assert "already loaded" in duplicate_reason and first_run in duplicate_reason


def test_a_corrected_file_under_the_same_name_loads_and_archives_beside_the_first(hub: HubResource, landing: Path):
    world = World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS)
    with dg.instance_for_test() as instance:
        first = write_supplier_feed(landing, GOOD, world, bad_rows=3)
        (request,) = tick(instance, landing)
        assert execute(request, instance, hub).success
        second = write_supplier_feed(landing, GOOD, world, bad_rows=0)  # the supplier's corrected resend
        (again,) = tick(instance, landing)
        assert again.run_key == key(second.path) != request.run_key
        result = execute(again, instance, hub)
        assert result.success
        assert count(hub, "core.supplier_offers") == first.rows
        archived = sorted(p.name for p in (landing / "archive").iterdir())
        assert len(archived) == 2 and first.path.name in archived
        assert tick(instance, landing) == []


def test_a_file_changed_after_the_tick_is_not_loaded(hub: HubResource, landing: Path):
    world = World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS)
    with dg.instance_for_test() as instance:
        feed = write_supplier_feed(landing, GOOD, world, bad_rows=0)
        (request,) = tick(instance, landing)
        write_supplier_feed(landing, GOOD, world, bad_rows=2)
        result = execute(request, instance, hub)
        assert not result.success and count(hub, "core.supplier_offers") == 0
        assert feed.path.exists()
        (fresh,) = tick(instance, landing)
        assert fresh.run_key == key(feed.path) != request.run_key
