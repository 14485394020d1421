"""Schema drift of raw records: added, removed and retyped fields under each policy (evolve, warn, freeze).

The simulator's channels land as they are; drifted versions of the same records (one field added,
dropped or retyped, version bumped) then land through the same `land_pages` path.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from assets.commerce import RAW_CHANNELS, raw_commerce_channels
from assets.landing import land_pages
from quality.config import QualityRules
from quality.drift import build_schema_drift_check, drift_result
from resources.hub import HubResource

TABLE = RAW_CHANNELS.name


def rules(policy: str) -> QualityRules:
    return QualityRules(schema_policy={"default": "warn", TABLE: policy})


def documents(hub: HubResource) -> list[dict]:
    return [orjson.loads(d) for d in hub.read_frame(f"SELECT document FROM {TABLE}")["document"]]


def land_drifted(hub: HubResource, change: Callable[[dict], None]) -> None:
    """Land every channel again, changed by `change`, with its version bumped."""
    docs = documents(hub)
    for doc in docs:
        change(doc)
        doc["version"] += 1
    land_pages(dg.build_asset_context(), hub, RAW_CHANNELS, [docs], source="commerce/channels")


def added(doc: dict) -> None:
    doc["loyaltyTier"] = "gold"


def removed(doc: dict) -> None:
    doc.pop("key")


def retyped(doc: dict) -> None:
    doc["key"] = len(doc["key"])


@pytest.fixture
def landed(hub: HubResource, commerce) -> HubResource:
    """Channels landed from the simulator, their first schema accepted."""
    assert dg.materialize([raw_commerce_channels], resources={"hub": hub, "commerce": commerce}).success
    first = drift_result(hub, TABLE, rules("warn"))
    assert first.passed and "first schema accepted" in (first.description or "")
    return hub


def test_an_unchanged_batch_passes(landed: HubResource):
    land_drifted(landed, lambda doc: None)
    result = drift_result(landed, TABLE, rules("freeze"))
    assert result.passed and "matches the accepted schema" in (result.description or "")


@pytest.mark.parametrize(
    ("change", "policy", "passed", "severity", "described"),
    [
        (
            added,
            "warn",
            False,
            dg.AssetCheckSeverity.WARN,
            "new fields recorded (policy warn): added loyaltyTier (string)",
        ),
        (added, "freeze", False, dg.AssetCheckSeverity.ERROR, "added loyaltyTier (string)"),
        (added, "evolve", True, dg.AssetCheckSeverity.ERROR, "schema evolved and accepted"),
        (removed, "warn", False, dg.AssetCheckSeverity.ERROR, "removed key (was string)"),
        (removed, "evolve", True, dg.AssetCheckSeverity.ERROR, "removed key (was string)"),
        (retyped, "warn", False, dg.AssetCheckSeverity.ERROR, "retyped key (string -> number)"),
        (retyped, "freeze", False, dg.AssetCheckSeverity.ERROR, "retyped key (string -> number)"),
    ],
)
def test_drift_under_each_policy(landed: HubResource, change, policy, passed, severity, described):
    land_drifted(landed, change)
    result = drift_result(landed, TABLE, rules(policy))
    assert result.passed is passed
    assert result.severity == severity
    assert described in (result.description or "")
    drift = result.metadata["drift"].value
    field = "loyaltyTier" if change is added else "key"
    kind = change.__name__
    assert field in drift[kind]
    # What the policy accepted is the schema the next batch is compared with.
    accepted_now = drift_result(landed, TABLE, rules(policy))
    recorded = policy == "evolve" or (policy == "warn" and change is added)
    assert accepted_now.passed is recorded


def test_the_check_runs_on_the_raw_asset_and_warns_without_blocking(
    landed: HubResource, commerce, tmp_path: Path, monkeypatch
):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"quality": {"schema_policy": {"default": "warn"}}}), encoding="utf-8")
    monkeypatch.setenv("RULES_FILE", str(rules_file))
    land_drifted(landed, added)
    check = build_schema_drift_check(dg.AssetKey(["raw", "commerce_channels"]))
    result = dg.materialize(
        [raw_commerce_channels, check],
        resources={"hub": landed, "commerce": commerce},
        selection=dg.AssetSelection.checks(check),
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "schema_drift"
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["added_fields"].value == 1
    schemas = landed.read_frame("SELECT fields, change FROM quality.accepted_schemas ORDER BY _batch_id")
    assert "loyaltyTier" in orjson.loads(schemas["fields"].iloc[-1])
    assert orjson.loads(schemas["change"].iloc[-1])["added"] == {"loyaltyTier": ["string"]}
