"""Jobs: what runs together."""

import dagster as dg

from assets.commerce import incremental_run_config

COMMERCE = dg.AssetSelection.groups("commerce")

full_sync_job = dg.define_asset_job(
    "full_sync_job",
    selection=COMMERCE,
    description="Every source in full: extract, land raw, conform core, run the blocking checks.",
)

incremental_sync_job = dg.define_asset_job(
    "incremental_sync_job",
    selection=COMMERCE,
    config=incremental_run_config(),
    description="Only what changed since each committed watermark (with a lookback), then conform and check.",
)
