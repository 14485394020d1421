"""Identifiers from config are validated against an allow-list and quoted; values are always bound."""

from __future__ import annotations

import pytest

from resources.hub import HubResource, TableSpec, quoted
from resources.hub.tables import check_identifier

INJECTIONS = ["x' OR '1'='1", "x'; DROP TABLE ops.sync_state; --", 'x"; DROP SCHEMA core CASCADE; --', "x\\'; --"]


def test_every_declared_name_passes_the_allow_list_and_is_quoted(matrix):
    specs = set(_specs())
    assert len(specs) > 20
    for spec in specs:
        schema, table = spec.name.split(".")
        check_identifier(table)
        for column, _ in spec.all_columns:
            check_identifier(column)
        assert quoted(spec.name) == f'"{schema}"."{table}"'
    matrix.proved("identifiers from config", "bad-input", tables=len(specs))


@pytest.mark.parametrize("name", INJECTIONS)
def test_a_name_outside_the_allow_list_is_refused(name: str):
    with pytest.raises(ValueError, match="invalid"):
        check_identifier(name)
    with pytest.raises(ValueError):
        TableSpec(f"core.{name}", (("a", "text"),), ("a",))


def test_values_are_bound_never_spliced(each_hub: HubResource, matrix):
    with each_hub.load("a-real-key") as load:
        load.advance(cursor="1")
    for value in INJECTIONS:
        assert each_hub.sync_state(value) is None
        assert each_hub.read_frame("SELECT sync_key FROM ops.sync_state WHERE sync_key = ?", [value]).empty
        with each_hub.load(value) as load:  # the injection text is stored as a plain value
            load.advance(cursor=value)
        assert each_hub.sync_state(value).cursor == value
    assert each_hub.sync_state("a-real-key").cursor == "1"
    assert each_hub.backend.table_exists("ops.sync_state")
    matrix.proved("SQL injection in values", "bad-input", values=len(INJECTIONS))


def _specs() -> list[TableSpec]:
    import assets.commerce
    import assets.orders
    import assets.payments
    import assets.warehouse

    modules = (assets.commerce, assets.orders, assets.payments, assets.warehouse)
    return [value for module in modules for value in vars(module).values() if isinstance(value, TableSpec)]
