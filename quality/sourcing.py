"""Checks on the sourcing read model: unique keys, ranks from 1 with no gaps per (SKU, region), stock >= 0."""

import dagster as dg
from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules
from quality.validation import DatasetSuite, References
from resources.hub import HUB_POOL, HubResource

SOURCING_OPTIONS = "serving.v1_sourcing_options"
# Groups whose ranks are not exactly 1..n distinct values; portable SQL (DuckDB and Postgres).
RANK_GAPS_SQL = (
    "SELECT sku, region, min(rank) AS lowest, max(rank) AS highest, count(DISTINCT rank) AS distinct_ranks "
    f"FROM {SOURCING_OPTIONS} GROUP BY sku, region "
    "HAVING min(rank) <> 1 OR max(rank) <> count(DISTINCT rank) ORDER BY sku, region"
)
MAX_REPORTED_GROUPS = 20


def _options(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "region", "warehouse_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="rank"),
        gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="available_quantity", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="inbound_quantity", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="available_to_promise", column_B="available_quantity", or_equal=True
        ),
        gxe.ExpectColumnValuesToBeBetween(column="distance_km", min_value=0, max_value=20_100),
    ]


sourcing_options_suite = DatasetSuite(
    name="sourcing_options_suite",
    table=SOURCING_OPTIONS,
    key_columns=("sku", "region", "warehouse_id"),
    columns=("rank", "available_quantity", "inbound_quantity", "available_to_promise", "distance_km"),
    expectations=_options,
)

SOURCING_SUITES: tuple[DatasetSuite, ...] = (sourcing_options_suite,)


@dg.asset_check(
    asset=dg.AssetKey(SOURCING_OPTIONS.split(".")),
    name="sourcing_ranks_dense",
    description="Per (sku, region) the ranks are 1, 2, ... n with no gaps.",
    blocking=True,
    pool=HUB_POOL,
)
def sourcing_ranks_dense(hub: HubResource) -> dg.AssetCheckResult:
    gaps = hub.read_frame(RANK_GAPS_SQL)
    sample = gaps.head(MAX_REPORTED_GROUPS).astype({"lowest": int, "highest": int, "distinct_ranks": int})
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description="ranks are dense" if gaps.empty else f"{len(gaps)} (sku, region) groups have rank gaps",
        metadata={"groups_with_gaps": len(gaps), "examples": dg.MetadataValue.json(sample.to_dict("records"))},
    )


SOURCING_CHECKS = [sourcing_ranks_dense]
