"""Schema drift of raw sources: each landed batch's fields and types against the last accepted schema.

A raw row keeps its source record whole (`document`). The `schema_drift` check on a raw table reads the
documents of the newest batch, and derives the observed schema: per top-level field, its JSON types
(string, number, boolean, object, array; null says nothing about a type) and whether every record has it.
Compared with the schema accepted last for the table (`quality.accepted_schemas`):

- added: a field no accepted record had;
- removed: a field every accepted record had, missing from some record now;
- retyped: a field with a type it never had.

The policy per raw table (`quality.schema_policy` in the rules file) decides: `evolve` accepts and
records any change; `warn` records additions with a WARN result and fails on removals and retypes;
`freeze` fails on any change. A failing result names the fields and their types before and after.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson

from quality.config import QualityRules, quality_rules
from quality.paths import report_path
from resources.hub import HUB_POOL, HubResource, TableSpec, quoted

CHECK_NAME = "schema_drift"
JSON_TYPES = {str: "string", bool: "boolean", int: "number", float: "number", dict: "object", list: "array"}

ACCEPTED_SCHEMAS = TableSpec(
    "quality.accepted_schemas",
    (
        ("table_name", "text"),
        ("schema_hash", "text"),
        ("fields", "json"),
        ("change", "json"),
        ("policy", "text"),
        ("raw_batch_id", "bigint"),
        ("accepted_at", "timestamp"),
    ),
    ("table_name", "schema_hash"),
    change_columns=("change", "policy", "raw_batch_id", "accepted_at"),
    description="Accepted top-level schemas of raw source records, newest per table by _batch_id.",
    column_descriptions={
        "fields": 'Field -> {"types": [...], "required": bool}, as JSON.',
        "change": "The drift that led to this schema (added, removed, retyped), as JSON.",
        "raw_batch_id": "The raw batch the schema was observed in.",
    },
)

Schema = dict[str, dict[str, Any]]


def observed_schema(documents: Iterable[Mapping[str, Any]]) -> Schema:
    """Per top-level field: its non-null JSON types and whether every document has it."""
    types: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    total = 0
    for document in documents:
        total += 1
        for name, value in document.items():
            present[name] = present.get(name, 0) + 1
            kinds = types.setdefault(name, set())
            if value is not None:
                kinds.add(JSON_TYPES.get(type(value), type(value).__name__))
    return {name: {"types": sorted(types[name]), "required": present[name] == total} for name in sorted(types)}


@dataclass(frozen=True)
class Drift:
    added: dict[str, list[str]] = field(default_factory=dict)  # field -> its types
    removed: dict[str, list[str]] = field(default_factory=dict)
    retyped: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # field -> {"accepted", "observed"}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "retyped": self.retyped}

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{f} ({'/'.join(t) or 'null'})" for f, t in self.added.items()))
        if self.removed:
            parts.append("removed " + ", ".join(f"{f} (was {'/'.join(t) or 'null'})" for f, t in self.removed.items()))
        if self.retyped:
            parts.append(
                "retyped "
                + ", ".join(
                    f"{f} ({'/'.join(c['accepted'])} -> {'/'.join(c['observed'])})" for f, c in self.retyped.items()
                )
            )
        return "; ".join(parts) or "no change"


def diff(accepted: Schema, observed: Schema) -> Drift:
    added = {f: s["types"] for f, s in observed.items() if f not in accepted}
    removed = {
        f: s["types"] for f, s in accepted.items() if s["required"] and not observed.get(f, {}).get("required", False)
    }
    retyped = {
        f: {"accepted": accepted[f]["types"], "observed": s["types"]}
        for f, s in observed.items()
        if f in accepted and accepted[f]["types"] and not set(s["types"]) <= set(accepted[f]["types"])
    }
    return Drift(added, removed, retyped)


def evolved(accepted: Schema, observed: Schema, drift: Drift, policy: str) -> Schema | None:
    """The schema to accept after `drift` under `policy`, or None when nothing is accepted."""
    if not drift or policy == "freeze":
        return None
    if policy == "warn":
        return {**accepted, **{f: observed[f] for f in drift.added}} if drift.added else None
    merged = dict(accepted)
    for name, seen in observed.items():
        before = accepted.get(name, {"types": [], "required": seen["required"]})
        merged[name] = {"types": sorted({*before["types"], *seen["types"]}), "required": seen["required"]}
    for name in drift.removed:
        merged[name] = {**merged[name], "required": False}
    return merged


def schema_hash(schema: Schema) -> str:
    return hashlib.sha256(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def accepted_schema(hub: HubResource, table: str) -> Schema | None:
    if not hub.backend.table_exists(ACCEPTED_SCHEMAS.name):
        return None
    frame = hub.read_frame(
        f"SELECT fields FROM {quoted(ACCEPTED_SCHEMAS.name)} WHERE table_name = ? ORDER BY _batch_id DESC LIMIT 1",
        [table],
    )
    return None if frame.empty else orjson.loads(frame.iloc[0]["fields"])


def accept(hub: HubResource, table: str, schema: Schema, drift: Drift, policy: str, batch_id: int) -> None:
    """Record `schema` as the accepted schema of `table`."""
    row = ACCEPTED_SCHEMAS.to_arrow(
        {
            "table_name": [table],
            "schema_hash": [schema_hash(schema)],
            "fields": [orjson.dumps(schema).decode()],
            "change": [orjson.dumps(drift.as_dict()).decode()],
            "policy": [policy],
            "raw_batch_id": [batch_id],
            "accepted_at": [datetime.now(UTC)],
        }
    )
    with hub.load(f"schema:{table}") as load:
        load.stage(ACCEPTED_SCHEMAS).append(row)


def newest_documents(hub: HubResource, table: str) -> tuple[int | None, list[dict[str, Any]]]:
    """The raw table's newest batch id and the documents that batch landed."""
    if not hub.backend.table_exists(table):
        return None, []
    batch_id = hub.scalar(f"SELECT max(_batch_id) FROM {quoted(table)}")
    if batch_id is None:
        return None, []
    documents = []
    for batch in hub.read_batches(f"SELECT document FROM {quoted(table)} WHERE _batch_id = ?", [int(batch_id)]):
        documents.extend(orjson.loads(d) for d in batch.column("document").to_pylist())
    return int(batch_id), documents


def drift_result(hub: HubResource, table: str, rules: QualityRules) -> dg.AssetCheckResult:
    """Compare the newest raw batch of `table` with its accepted schema; record what the policy accepts."""
    policy = rules.policy(table)
    batch_id, documents = newest_documents(hub, table)
    if batch_id is None or not documents:
        return dg.AssetCheckResult(passed=True, description=f"{table}: no records landed yet")
    observed = observed_schema(documents)
    accepted = accepted_schema(hub, table)
    if accepted is None:
        accept(hub, table, observed, Drift(), policy, batch_id)
        return dg.AssetCheckResult(
            passed=True,
            description=f"{table}: first schema accepted ({len(observed)} fields)",
            metadata={"fields": len(observed), "policy": policy},
        )
    drift = diff(accepted, observed)
    new_schema = evolved(accepted, observed, drift, policy)
    if new_schema is not None:
        accept(hub, table, new_schema, drift, policy, batch_id)
    failing = bool(drift) and (policy == "freeze" or (policy == "warn" and (drift.removed or drift.retyped)))
    warning = bool(drift) and policy == "warn" and not failing
    metadata = {
        "policy": dg.MetadataValue.text(policy),
        "policy_setting": dg.MetadataValue.text(f"quality.schema_policy.{table} (RULES_FILE)"),
        "raw_batch_id": dg.MetadataValue.int(batch_id),
        "records": dg.MetadataValue.int(len(documents)),
        "added_fields": dg.MetadataValue.int(len(drift.added)),
        "removed_fields": dg.MetadataValue.int(len(drift.removed)),
        "retyped_fields": dg.MetadataValue.int(len(drift.retyped)),
        "drift": dg.MetadataValue.json(drift.as_dict()),
        "quality_report": dg.MetadataValue.path(str(report_path())),
    }
    if not drift:
        description = f"{table}: matches the accepted schema ({len(accepted)} fields)"
    elif failing:
        description = f"{table} drifted from its accepted schema under policy {policy}: {drift.describe()}"
    elif warning:
        description = f"{table}: new fields recorded (policy warn): {drift.describe()}"
    else:
        description = f"{table}: schema evolved and accepted (policy evolve): {drift.describe()}"
    return dg.AssetCheckResult(
        passed=not (failing or warning),
        severity=dg.AssetCheckSeverity.WARN if warning else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def build_schema_drift_check(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """A `schema_drift` check on a raw asset (its table is `raw.<name>`); needs the `hub` resource."""
    table = ".".join(asset_key.path)

    @dg.asset_check(
        asset=asset_key,
        name=CHECK_NAME,
        description=f"Fields and types of the newest records in {table} against its accepted schema.",
        blocking=True,
        required_resource_keys={"hub"},
        pool=HUB_POOL,
    )
    def _drift(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        result = drift_result(context.resources.hub, table, quality_rules())
        context.log.info(result.description or "")
        return result

    return _drift


def build_schema_drift_checks(asset_keys: Sequence[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    """One `schema_drift` check per raw asset key (keys outside the raw schema are left out)."""
    return [build_schema_drift_check(k) for k in asset_keys if k.path[0] == "raw"]
