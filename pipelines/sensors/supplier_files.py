"""Supplier file sensor: one run per new CSV in the warehouse landing directory.

The sensor only lists ``suppliers_*.csv`` (the feed writer renames a hidden ``.partial`` file into
place, so a half-written file never matches) and hashes each one; the ``run_key`` is
``<file name>:<sha256>``, so the daemon launches one run per name and content. The run loads the
file atomically, then moves it: to ``archive/`` once the load has committed, or, when the file is
rejected whole, to ``rejected/`` next to a ``<name>.reason`` file, and the run fails so the failure
sensor alerts. A file dropped again with content already loaded by a successful run is not loaded
again: the sensor moves it to ``rejected/`` with a reason naming that run.
"""

import hashlib
import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.landing import asset_key
from assets.warehouse import QUARANTINE, SUPPLIER_OFFERS, load_supplier_file
from resources.hub import HUB_POOL, HubResource
from resources.warehouse import WarehouseResource

FILE_PATTERN = "suppliers_*.csv"
ARCHIVE = "archive"
REJECTED = "rejected"
NAME_TAG = "supplier_file/name"
SHA256_TAG = "supplier_file/sha256"


class SupplierFileConfig(dg.Config):
    path: str = Field(description="The CSV file to load, in the landing directory.")
    sha256: str = Field(description="The content hash the sensor saw; a file changed since is not loaded.")


def sha256(path: Path) -> str:
    with path.open("rb") as raw:
        return hashlib.file_digest(raw, "sha256").hexdigest()


def run_key(path: Path, digest: str) -> str:
    return f"{path.name}:{digest}"


def _move(path: Path, folder_name: str, digest: str) -> Path:
    """Move `path` into `<its folder>/<folder_name>/`, keeping the name unless a different file holds it."""
    folder = path.parent / folder_name
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists() and sha256(target) != digest:
        target = folder / f"{path.stem}.{digest[:12]}{path.suffix}"
    os.replace(path, target)
    return target


def _reject(path: Path, digest: str, reason: str) -> Path:
    """Write `<name>.reason` in rejected/ (atomically), then move the file beside it."""
    target = _move(path, REJECTED, digest)
    partial = target.parent / f".{target.name}.reason.partial"
    partial.write_text(reason + "\n", encoding="utf-8")
    os.replace(partial, target.parent / f"{target.name}.reason")
    return target


@dg.op(pool=HUB_POOL, out={}, description="Load one supplier CSV into core.supplier_offers, then archive or reject it.")
def load_supplier_file_op(context: dg.OpExecutionContext, config: SupplierFileConfig, hub: HubResource):
    path = Path(config.path)
    if not path.is_file():
        raise dg.Failure(description=f"{path} is no longer in the landing directory")
    digest = sha256(path)
    if digest != config.sha256:
        raise dg.Failure(
            description=f"{path.name} changed since the sensor saw it (sha256 {config.sha256[:12]}, "
            f"now {digest[:12]}); the sensor requests a run for the new content"
        )
    hub.ensure_table(SUPPLIER_OFFERS)
    hub.ensure_table(QUARANTINE)
    result = load_supplier_file(path, hub)
    if result.rejected:
        target = _reject(path, digest, result.error or "")
        raise dg.Failure(
            description=result.error,
            metadata={"file": path.name, "sha256": digest, "moved_to": str(target)},
        )
    target = _move(path, ARCHIVE, digest)
    outcome = "skipped: the same content was already loaded" if result.skipped else "loaded"
    context.log.info(
        f"{path.name}: {outcome}, {result.rows_loaded:,} offers loaded, {result.rows_quarantined:,} quarantined"
    )
    merged = result.load.results.get(SUPPLIER_OFFERS.name) if result.load else None
    yield dg.AssetMaterialization(
        asset_key=asset_key(SUPPLIER_OFFERS),
        description=f"{path.name} {outcome}",
        metadata={
            "file": path.name,
            "sha256": digest,
            "outcome": outcome,
            "rows_loaded": result.rows_loaded,
            "rows_quarantined": result.rows_quarantined,
            "rows_changed": merged.rows_changed if merged else 0,
            "batch_id": result.load.batch_id if result.load else None,
            "archived_to": str(target),
            "dagster/row_count": hub.row_count(SUPPLIER_OFFERS),
        },
    )


@dg.job(description="Load one supplier CSV from the landing directory (requested by supplier_file_sensor).")
def supplier_file_job():
    load_supplier_file_op()


def _loaded_by(instance: dg.DagsterInstance, path: Path, digest: str) -> str | None:
    """The id of a successful earlier run of this name and content, if any."""
    records = instance.get_run_records(
        dg.RunsFilter(
            job_name=supplier_file_job.name,
            statuses=[dg.DagsterRunStatus.SUCCESS],
            tags={NAME_TAG: path.name, SHA256_TAG: digest},
        ),
        limit=1,
    )
    return records[0].dagster_run.run_id if records else None


@dg.sensor(
    job=supplier_file_job,
    minimum_interval_seconds=30,
    description="One supplier_file_job run per new suppliers_*.csv in the warehouse landing directory.",
)
def supplier_file_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    folder = Path(warehouse.landing_dir).resolve()
    if not folder.is_dir():
        return dg.SkipReason(f"the landing directory {folder} does not exist (WAREHOUSE_LANDING_DIR)")
    requests = []
    for path in sorted(p for p in folder.glob(FILE_PATTERN) if p.is_file()):
        digest = sha256(path)
        earlier = _loaded_by(context.instance, path, digest)
        if earlier is not None:
            target = _reject(path, digest, f"{path.name}: the same content was already loaded by run {earlier}")
            context.log.warning(f"{path.name} was dropped again unchanged; moved to {target}")
            continue
        requests.append(
            dg.RunRequest(
                run_key=run_key(path, digest),
                run_config={"ops": {load_supplier_file_op.name: {"config": {"path": str(path), "sha256": digest}}}},
                tags={NAME_TAG: path.name, SHA256_TAG: digest},
            )
        )
    return requests or dg.SkipReason(f"no new {FILE_PATTERN} in {folder}")
