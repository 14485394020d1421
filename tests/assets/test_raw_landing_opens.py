"""Every raw landing step opens the embedded hub once, whatever it reads and writes on the way."""

from pathlib import Path

import dagster as dg
import pytest

from assets.commerce import raw_commerce_channels, raw_commerce_inventory_entries
from assets.payments import raw_payments_charges, raw_payments_events
from assets.warehouse import raw_warehouse_stock_levels, raw_warehouse_stock_movements
from resources.hub import HubResource
from resources.hub.duckdb import DuckDBHub
from tests.conftest import Simulator, every_resource

RAW_STEPS = [
    raw_commerce_channels,
    raw_commerce_inventory_entries,
    raw_payments_charges,
    raw_payments_events,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
]


@pytest.mark.parametrize("asset", RAW_STEPS, ids=lambda a: a.op.name)
def test_a_raw_step_opens_the_embedded_hub_once(
    asset: dg.AssetsDefinition, simulator: Simulator, hub: HubResource, tmp_path: Path, monkeypatch
):
    resources = every_resource(simulator, hub, tmp_path)
    hub.backend.ensure_schemas()  # what the first statement of any step does once per process
    opens = []
    real_open = DuckDBHub._open

    def counted(self: DuckDBHub):
        opens.append(self.path)
        return real_open(self)

    monkeypatch.setattr(DuckDBHub, "_open", counted)
    for _ in range(2):  # a first landing, and one that finds the tables there
        opens.clear()
        assert dg.materialize([asset], resources=resources).success
        assert opens == [hub.backend.path]
