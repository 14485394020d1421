"""Freshness policies: every core table says how stale it may get before the UI flags it."""

from collections.abc import Iterable, Sequence
from datetime import timedelta

import dagster as dg

# Batch systems sync every 15 minutes and in full nightly: warn after 2 h of silence, fail after a missed night.
BATCH_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=2))
# Daily analytics partitions land after each day closes.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=30))
GROUP_FRESHNESS = {"analytics": DAILY_FRESHNESS}


def freshness_policy(spec: dg.AssetSpec) -> dg.FreshnessPolicy | None:
    """The policy of a `core/*` asset (by its group, batch by default); None for any other layer."""
    if spec.key.path[0] != "core":
        return None
    return GROUP_FRESHNESS.get(spec.group_name or "", BATCH_FRESHNESS)


def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = freshness_policy(spec)
    return spec if policy is None else dg.apply_freshness_policy(spec, policy)


def with_freshness(
    assets: Iterable[dg.AssetsDefinition | dg.AssetSpec],
) -> Sequence[dg.AssetsDefinition | dg.AssetSpec]:
    """`assets` with a freshness policy on every core asset spec (Dagster's `map_asset_specs`)."""
    return list(dg.map_asset_specs(_apply, assets))
