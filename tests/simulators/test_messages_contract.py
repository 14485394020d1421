"""Contract tests for the commerce simulator's Messages API (real HTTP, subprocess)."""

from __future__ import annotations

from collections import Counter

from simulators.server import SimulatorState
from tests.simulators.test_commerce_contract import TS_RE, Api, admin, assert_ct_error


def all_messages(api: Api, limit: int = 500, **params) -> list[dict]:
    """Every message by keyset paging on (createdAt, id), the way a reader with a cursor pages."""
    out: list[dict] = []
    where: dict = {}
    while True:
        body = api.page("messages", sort=["createdAt asc", "id asc"], limit=limit, withTotal="false", **params, **where)
        out.extend(body["results"])
        if body["count"] < limit:
            return out
        last = body["results"][-1]
        where = {
            "where": "createdAt > :ts or (createdAt = :ts and id > :id)",
            "var.ts": last["createdAt"],
            "var.id": last["id"],
        }


def test_project_enables_messages_and_a_reset_world_has_none(clean_world: str) -> None:
    api = Api(clean_world)
    assert api.page("")["messages"] == {"enabled": True}
    admin(clean_world, "POST", "churn", {"products": 2, "inventory": 2})
    assert api.page("messages")["total"] == 4
    admin(clean_world, "POST", "reset", {"seed": 7, "products": 300})
    assert api.page("messages") == {"limit": 20, "offset": 0, "count": 0, "total": 0, "results": []}


def test_churn_records_one_message_per_change_with_the_real_shape(clean_world: str) -> None:
    api = Api(clean_world)
    before = {e["id"]: e for e in api.export("inventory")}
    result = admin(clean_world, "POST", "churn", {"products": 5, "inventory": 20})
    messages = all_messages(api)
    assert Counter(m["type"] for m in messages) == {"ProductPublished": 5, "InventoryEntryQuantitySet": 20}
    assert {m["createdAt"] for m in messages} == {result["lastModifiedAt"]}  # one churn: all tie
    assert len({m["id"] for m in messages}) == 25
    for m in messages:
        assert set(m) >= {"id", "version", "sequenceNumber", "resource", "resourceVersion", "type", "createdAt"}
        assert m["version"] == 1 and m["sequenceNumber"] == 1 and TS_RE.match(m["lastModifiedAt"])
        resource = m["resource"]
        if m["type"] == "ProductPublished":
            assert resource["typeId"] == "product" and resource["id"] in result["products"]
            current = api.page(f"product-projections/{resource['id']}")
            assert m["productProjection"] == current and m["scope"] == "All"
            assert m["resourceVersion"] == current["version"]
            assert m["resourceUserProvidedIdentifiers"] == {"key": current["key"]}
        else:
            assert resource["typeId"] == "inventory-entry" and resource["id"] in result["inventory"]
            old, now = before[resource["id"]], api.page(f"inventory/{resource['id']}")
            assert m["resourceVersion"] == now["version"] == old["version"] + 1
            assert (m["sku"], m["supplyChannel"]) == (now["sku"], now["supplyChannel"])
            assert (m["oldQuantityOnStock"], m["newQuantityOnStock"]) == (
                old["quantityOnStock"],
                now["quantityOnStock"],
            )
            assert (m["oldAvailableQuantity"], m["newAvailableQuantity"]) == (
                old["availableQuantity"],
                now["availableQuantity"],
            )


def test_sequence_numbers_count_per_resource_and_deletes_remove_records(clean_world: str) -> None:
    api = Api(clean_world)
    first = admin(clean_world, "POST", "churn", {"products": 300, "inventory": 0})  # every product once
    target = first["products"][0]
    version = api.page(f"product-projections/{target}")["version"]
    second = admin(clean_world, "POST", "churn", {"products": 0, "inventory": 0, "deleted_products": 300})
    assert sorted(second["deleted_products"]) == sorted(first["products"])
    assert api.page("product-projections")["total"] == 0
    assert_ct_error(api.get(f"product-projections/{target}"), 404, "ResourceNotFound")
    history = all_messages(api, where="resource(id = :id)", **{"var.id": target})
    assert [(m["type"], m["sequenceNumber"], m["resourceVersion"]) for m in history] == [
        ("ProductPublished", 1, version),
        ("ProductDeleted", 2, version + 1),
    ]
    assert history[1]["currentProjection"]["id"] == target and history[1]["removedImageUrls"] == []

    doomed = admin(clean_world, "POST", "churn", {"deleted_inventory": 3})["deleted_inventory"]
    deleted = api.page("messages", where='type = "InventoryEntryDeleted"', limit=500)["results"]
    assert sorted(m["resource"]["id"] for m in deleted) == sorted(doomed)
    for m in deleted:
        assert set(m) - {"resourceUserProvidedIdentifiers"} >= {"sku", "supplyChannel"}
        assert_ct_error(api.get(f"inventory/{m['resource']['id']}"), 404, "ResourceNotFound")
    same_skus = api.page("inventory", where="sku in :skus", limit=500, **{"var.skus": [m["sku"] for m in deleted]})
    assert same_skus["count"] > 0 and not {e["id"] for e in same_skus["results"]} & set(doomed)  # sku index too


def test_keyset_paging_over_ties_has_no_gaps(clean_world: str) -> None:
    api = Api(clean_world)
    admin(clean_world, "POST", "churn", {"products": 7, "inventory": 30})
    admin(clean_world, "POST", "churn", {"products": 3, "inventory": 10, "deleted_inventory": 2})
    expected = sorted(api.page("messages", limit=500)["results"], key=lambda m: (m["createdAt"], m["id"]))
    assert len(expected) == 52
    assert all_messages(api, limit=7) == expected  # pages of 7 split each churn's tie
    assert api.page("messages", sort=["createdAt desc", "id desc"], limit=500)["results"] == expected[::-1]


def test_where_on_message_fields(clean_world: str) -> None:
    api = Api(clean_world)
    admin(clean_world, "POST", "churn", {"products": 4, "inventory": 6})
    products = api.page("messages", where='resource(typeId = "product")', limit=500)
    assert products["total"] == 4 and {m["type"] for m in products["results"]} == {"ProductPublished"}
    assert api.page("messages", where="sequenceNumber > 1")["total"] == 0
    assert api.page("messages", where='type in ("InventoryEntryQuantitySet")')["total"] == 6
    one = products["results"][0]
    assert api.page(f"messages/{one['id']}") == one
    bad = api.get("messages", where="resourceVersion = true")
    assert_ct_error(bad, 400, "InvalidInput")


def test_injections_record_messages_too(clean_world: str) -> None:
    api = Api(clean_world)
    planted = admin(clean_world, "POST", "inject", {"kinds": ["negative_stock", "orphan_inventory", "negative_price"]})
    by_resource = {m["resource"]["id"]: m for m in all_messages(api)}
    assert by_resource[planted["orphan_inventory"]["inventory_entry_id"]]["type"] == "InventoryEntryCreated"
    assert by_resource[planted["negative_stock"]["inventory_entry_id"]]["newQuantityOnStock"] < 0
    assert by_resource[planted["negative_price"]["product_id"]]["type"] == "ProductPublished"


def test_subscribers_get_each_new_batch_and_survive_a_reset() -> None:
    state = SimulatorState(products=20, seed=3)
    batches: list[list[dict]] = []
    state.commerce.messages.subscribe(batches.append)
    state.commerce.store.churn(2, 3, state.clock.now())
    state.reset()
    state.commerce.store.churn(1, 0, state.clock.now(), deleted_inventory=1)
    assert [[m["type"] for m in b] for b in batches] == [
        ["ProductPublished"] * 2 + ["InventoryEntryQuantitySet"] * 3,
        ["ProductPublished", "InventoryEntryDeleted"],
    ]
    assert len(state.commerce.messages.store) == 2  # the reset cleared the first batch
