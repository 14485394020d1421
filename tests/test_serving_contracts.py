"""The serving tables, their documentation and the committed v1 snapshot agree: contracts do not drift."""

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import assets
from resources.hub import TableSpec

ROOT = Path(__file__).parent.parent
SNAPSHOT = ROOT / "tests" / "contracts" / "serving_v1.json"
DOC = ROOT / "docs" / "serving-contracts.md"


def declared_serving_tables() -> dict[str, TableSpec]:
    """Every `serving.*` TableSpec declared at module level in assets/."""
    found = {}
    for module_info in pkgutil.iter_modules(assets.__path__):
        module = importlib.import_module(f"assets.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, TableSpec) and value.schema == "serving":
                found[value.name] = value
    return found


def contract(spec: TableSpec) -> dict:
    return {"columns": [list(c) for c in spec.columns], "primary_key": list(spec.primary_key)}


def documented_tables() -> dict[str, dict]:
    """`## serving.v1_x` sections of the contracts page: their key line and column table."""
    tables, current = {}, None
    for line in DOC.read_text().splitlines():
        if heading := re.match(r"^## (serving\.v\d+_\w+)\s*$", line):
            current = tables.setdefault(heading.group(1), {"columns": [], "primary_key": []})
        elif current is not None and (key := re.match(r"^Key: ([\w, ]+)\.", line)):
            current["primary_key"] = [k.strip() for k in key.group(1).split(",")]
        elif current is not None and (row := re.match(r"^\| (\w+) \| (\w+) \|", line)) and row.group(1) != "column":
            current["columns"].append([row.group(1), row.group(2)])
    return tables


def test_serving_tables_are_versioned_names():
    for name in declared_serving_tables():
        assert re.match(r"^serving\.v\d+_[a-z0-9_]+$", name), name


def test_no_contract_is_dropped_renamed_or_retyped():
    """A v1 table may not lose, rename or retype a column; new tables and new columns at the end are fine."""
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT} is missing: commit the serving contracts snapshot")
    snapshot = json.loads(SNAPSHOT.read_text())
    declared = {name: contract(spec) for name, spec in declared_serving_tables().items()}
    for name, promised in snapshot.items():
        assert name in declared, f"{name} was dropped: publish a new version instead"
        now = declared[name]
        assert now["primary_key"] == promised["primary_key"], f"{name}: key changed"
        assert now["columns"][: len(promised["columns"])] == promised["columns"], f"{name}: a column changed"


def test_every_serving_table_is_documented_as_declared():
    declared = {name: contract(spec) for name, spec in declared_serving_tables().items()}
    assert declared, "no serving tables declared"
    assert documented_tables() == declared
