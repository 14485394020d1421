"""Jobs: what runs together."""

import dagster as dg

full_sync_job = dg.define_asset_job(
    "full_sync_job",
    selection=dg.AssetSelection.all(),
    description="Every asset: extract each source, land raw, conform core, run the blocking checks.",
)

commerce_sync_job = dg.define_asset_job(
    "commerce_sync_job",
    selection=dg.AssetSelection.groups("commerce"),
    description="The commerce catalog, inventory, channels and categories.",
)
