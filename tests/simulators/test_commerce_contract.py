"""Contract tests for the commercetools-compatible commerce simulator (real HTTP, subprocess)."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from datetime import datetime

import pytest
import requests

from tests.simulators.conftest import SIM_PRODUCTS, start_sim

PROJECT = "beauty-hub"
CREDS = ("hub-client", "hub-secret")
SKU_RE = re.compile(r"^[A-Z]{3}-\d{6}-\d{2}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SYNTAX_PREFIX = "Malformed parameter: where: Syntax error while parsing 'where'."


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def admin(base: str, method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(method, f"{base}/_admin/{path}", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def get_token(base: str, **params: str) -> str:
    r = requests.post(
        f"{base}/commerce/oauth/token", params={"grant_type": "client_credentials", **params}, auth=CREDS, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class Api:
    """Tiny commercetools client for the tests (re-authenticates once on 401)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self._auth()

    def _auth(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {get_token(self.base)}"

    def get(self, path: str, **params) -> requests.Response:
        url = f"{self.base}/commerce/{PROJECT}/{path}"
        r = self.session.get(url, params=params, timeout=30)
        if r.status_code == 401:
            self._auth()
            r = self.session.get(url, params=params, timeout=30)
        return r

    def page(self, resource: str, **params) -> dict:
        r = self.get(resource, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def export(self, resource: str, limit: int = 500) -> list[dict]:
        """Keyset full export: sort=id asc, withTotal=false, where id > last, until count < limit."""
        out: list[dict] = []
        last = None
        while True:
            params = {"sort": "id asc", "withTotal": "false", "limit": limit}
            if last is not None:
                params["where"] = f'id > "{last}"'
            body = self.page(resource, **params)
            assert "total" not in body
            out.extend(body["results"])
            if body["count"] < limit:
                return out
            last = body["results"][-1]["id"]


def variants_of(product: dict) -> list[dict]:
    return [product["masterVariant"], *product["variants"]]


def ts_key(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_ct_error(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["errors"][0]["code"] == code, body
    return body


@pytest.fixture(scope="module")
def api(commerce_sim: str) -> Api:
    return Api(commerce_sim)


@pytest.fixture(scope="module")
def world(commerce_sim: str, api: Api) -> dict:
    """A snapshot of the clean world (products and inventory, exported once)."""
    admin(commerce_sim, "POST", "reset", {"seed": 7, "products": SIM_PRODUCTS})
    return {"products": api.export("product-projections"), "inventory": api.export("inventory")}


# ---------------------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------------------


def test_token_with_basic_credentials(commerce_sim: str) -> None:
    r = requests.post(
        f"{commerce_sim}/commerce/oauth/token", params={"grant_type": "client_credentials"}, auth=CREDS, timeout=10
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 172800
    assert body["scope"] == f"manage_project:{PROJECT}"
    assert len(body["access_token"]) >= 20
    assert r.headers["X-Correlation-ID"]
    assert r.headers["Content-Type"].startswith("application/json")


def test_token_with_form_body_and_scope(commerce_sim: str) -> None:
    r = requests.post(
        f"{commerce_sim}/commerce/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": f"view_products:{PROJECT} manage_project:{PROJECT}",
            "client_id": CREDS[0],
            "client_secret": CREDS[1],
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == f"view_products:{PROJECT} manage_project:{PROJECT}"


def test_token_bad_secret(commerce_sim: str) -> None:
    r = requests.post(
        f"{commerce_sim}/commerce/oauth/token",
        params={"grant_type": "client_credentials"},
        auth=(CREDS[0], "wrong"),
        timeout=10,
    )
    body = assert_ct_error(r, 401, "invalid_client")
    assert body["error"] == "invalid_client"
    assert body["error_description"]
    assert body["message"] == "Please provide valid client credentials using HTTP Basic Authentication."
    r = requests.post(f"{commerce_sim}/commerce/oauth/token", params={"grant_type": "client_credentials"}, timeout=10)
    assert_ct_error(r, 401, "invalid_client")


def test_token_bad_grant_type(commerce_sim: str) -> None:
    r = requests.post(f"{commerce_sim}/commerce/oauth/token", params={"grant_type": "password"}, auth=CREDS, timeout=10)
    body = assert_ct_error(r, 400, "unsupported_grant_type")
    assert body["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("scope", ["manage_project:other-project", "view_products:nope", "garbage"])
def test_token_invalid_scope(commerce_sim: str, scope: str) -> None:
    r = requests.post(
        f"{commerce_sim}/commerce/oauth/token",
        params={"grant_type": "client_credentials", "scope": scope},
        auth=CREDS,
        timeout=10,
    )
    body = assert_ct_error(r, 400, "invalid_scope")
    assert body["error"] == "invalid_scope"
    assert scope in body["message"]


def test_api_requires_a_valid_token(commerce_sim: str) -> None:
    url = f"{commerce_sim}/commerce/{PROJECT}/product-projections"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        r = requests.get(url, headers=headers, timeout=10)
        body = assert_ct_error(r, 401, "invalid_token")
        assert body["message"] == "invalid_token"
        assert body["error"] == "invalid_token"
        assert "error_description" in body
        assert r.headers["X-Correlation-ID"]


def test_expired_and_revoked_tokens(clean_world: str) -> None:
    base = clean_world
    url = f"{base}/commerce/{PROJECT}/channels"
    try:
        assert admin(base, "POST", "auth", {"token_ttl_seconds": 1})["token_ttl_seconds"] == 1
        r = requests.post(
            f"{base}/commerce/oauth/token", params={"grant_type": "client_credentials"}, auth=CREDS, timeout=10
        )
        assert r.json()["expires_in"] == 1
        short = r.json()["access_token"]
        assert requests.get(url, headers={"Authorization": f"Bearer {short}"}, timeout=10).status_code == 200
        time.sleep(1.2)
        assert_ct_error(
            requests.get(url, headers={"Authorization": f"Bearer {short}"}, timeout=10), 401, "invalid_token"
        )
    finally:
        admin(base, "POST", "auth", {"token_ttl_seconds": 172800})
    long_lived = get_token(base)
    assert requests.get(url, headers={"Authorization": f"Bearer {long_lived}"}, timeout=10).status_code == 200
    assert admin(base, "POST", "auth", {"expire_tokens": True})["expired_tokens"] >= 1
    assert_ct_error(
        requests.get(url, headers={"Authorization": f"Bearer {long_lived}"}, timeout=10), 401, "invalid_token"
    )


def test_unknown_project_and_paths(api: Api, commerce_sim: str) -> None:
    r = api.session.get(f"{commerce_sim}/commerce/no-such-project/product-projections", timeout=10)
    body = assert_ct_error(r, 404, "ResourceNotFound")
    assert body["message"] == "The project 'no-such-project' does not exist."
    assert_ct_error(api.get("no-such-resource"), 404, "ResourceNotFound")
    assert_ct_error(api.session.get(f"{commerce_sim}/nowhere", timeout=10), 404, "ResourceNotFound")
    project = api.session.get(f"{commerce_sim}/commerce/{PROJECT}", timeout=10).json()
    assert project["key"] == PROJECT and "USD" in project["currencies"]


# ---------------------------------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------------------------------


def test_default_paging(api: Api, world: dict) -> None:
    body = api.page("product-projections")
    assert (body["limit"], body["offset"], body["count"], body["total"]) == (20, 0, 20, SIM_PRODUCTS)
    assert len(body["results"]) == 20
    inv = api.page("inventory", limit=500, offset=4000)
    assert inv["total"] == len(world["inventory"])
    assert inv["count"] == len(inv["results"]) == len(world["inventory"]) - 4000


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"limit": 501}, False), ({"limit": -1}, False), ({"limit": "abc"}, False), ({"limit": "1.5"}, False),
        ({"offset": 10001}, False), ({"offset": -1}, False), ({"withTotal": "maybe"}, False),
        ({"limit": 500}, True), ({"limit": 0}, True), ({"offset": 10000}, True), ({"limit": 1}, True),
    ],
)  # fmt: skip
def test_paging_limits(api: Api, params: dict, ok: bool) -> None:
    r = api.get("product-projections", **params)
    if not ok:
        body = assert_ct_error(r, 400, "InvalidInput")
        assert body["message"].startswith("Malformed parameter: ")
        return
    assert r.status_code == 200, r.text
    body = r.json()
    limit = params.get("limit", 20)
    offset = params.get("offset", 0)
    assert body["limit"] == limit and body["offset"] == offset
    assert body["count"] == len(body["results"]) == max(0, min(limit, SIM_PRODUCTS - offset))
    assert body["total"] == SIM_PRODUCTS


def test_with_total(api: Api) -> None:
    assert "total" not in api.page("inventory", withTotal="false")
    assert api.page("inventory", withTotal="true")["total"] > 1000
    assert "total" not in api.page("inventory", withTotal="false", where="quantityOnStock > 10")


def test_total_capped_at_10000_with_where(clean_world: str, api: Api) -> None:
    try:
        admin(clean_world, "POST", "reset", {"seed": 7, "products": 3000})
        unfiltered = api.page("inventory", limit=1)["total"]
        assert unfiltered > 10000
        filtered = api.page("inventory", limit=1, where="quantityOnStock >= 0")
        assert filtered["total"] == 10000
        assert api.page("inventory", limit=5, where='sku = "ZZZ-000000-00"')["total"] == 0
    finally:
        admin(clean_world, "POST", "reset", {"seed": 7, "products": SIM_PRODUCTS})


# ---------------------------------------------------------------------------------------------------
# sort
# ---------------------------------------------------------------------------------------------------


def test_sort_applies_before_offset(api: Api, world: dict) -> None:
    ids = sorted(p["id"] for p in world["products"])
    seen: list[str] = []
    for offset in range(0, SIM_PRODUCTS, 70):
        seen += [p["id"] for p in api.page("product-projections", sort="id asc", limit=70, offset=offset)["results"]]
    assert seen == ids
    desc: list[str] = []
    for offset in range(0, SIM_PRODUCTS, 70):
        desc += [p["id"] for p in api.page("product-projections", sort="id desc", limit=70, offset=offset)["results"]]
    assert desc == ids[::-1]
    # default order is id asc
    assert [p["id"] for p in api.page("product-projections", limit=50)["results"]] == ids[:50]


@pytest.mark.parametrize("resource", ["product-projections", "inventory"])
def test_multi_sort_with_ties(api: Api, world: dict, resource: str) -> None:
    records = world["products" if resource == "product-projections" else "inventory"]
    counts = Counter(r["lastModifiedAt"] for r in records)
    assert max(counts.values()) >= 2, "the world must contain lastModifiedAt ties"
    expected = sorted(records, key=lambda r: (ts_key(r["lastModifiedAt"]), r["id"]))
    got: list[dict] = []
    offset = 0
    while offset < len(records):
        got += api.page(resource, sort=["lastModifiedAt asc", "id asc"], limit=500, offset=offset)["results"]
        offset += 500
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    first = api.page(resource, sort=["lastModifiedAt desc", "id desc"], limit=100)["results"]
    assert [r["id"] for r in first] == [r["id"] for r in expected[::-1][:100]]
    by_version = api.page(resource, sort=["version desc", "id asc"], limit=200)["results"]
    exp_version = sorted(records, key=lambda r: (-r["version"], r["id"]))[:200]
    assert [r["id"] for r in by_version] == [r["id"] for r in exp_version]


@pytest.mark.parametrize("sort", ["name asc", "id sideways", "", "id asc desc", "sku asc"])
def test_bad_sort(api: Api, sort: str) -> None:
    assert_ct_error(api.get("product-projections", sort=sort), 400, "InvalidInput")


# ---------------------------------------------------------------------------------------------------
# where
# ---------------------------------------------------------------------------------------------------


def test_where_id_greater_than(api: Api, world: dict) -> None:
    ids = sorted(p["id"] for p in world["products"])
    pivot = ids[100]
    body = api.page("product-projections", where=f'id > "{pivot}"', limit=500)
    assert [p["id"] for p in body["results"]] == ids[101:]
    assert body["total"] == len(ids) - 101


def test_where_key_in(api: Api) -> None:
    body = api.page("product-projections", where='key in ("prod-000001", "prod-000002", "prod-999999")')
    assert sorted(p["key"] for p in body["results"]) == ["prod-000001", "prod-000002"]
    body = api.page("product-projections", where='key not in ("prod-000001")', limit=500)
    assert body["count"] == SIM_PRODUCTS - 1


def test_where_sku_on_product_projections(api: Api, world: dict) -> None:
    product = next(p for p in world["products"] if len(p["variants"]) >= 2)
    master, other = product["masterVariant"]["sku"], product["variants"][1]["sku"]
    for where, expect in [
        (f'sku = "{other}"', [product["id"]]),
        (f'sku = "{master}"', [product["id"]]),
        (f'masterVariant(sku = "{master}")', [product["id"]]),
        (f'masterVariant(sku = "{other}")', []),
        (f'variants(sku = "{other}")', [product["id"]]),
        (f'variants(sku = "{master}")', []),
        (f'sku in ("{other}", "NOP-000000-00")', [product["id"]]),
    ]:
        got = [p["id"] for p in api.page("product-projections", where=where)["results"]]
        assert got == expect, where


def test_where_sku_on_inventory(api: Api, world: dict) -> None:
    sku = world["products"][5]["masterVariant"]["sku"]
    body = api.page("inventory", where=f'sku = "{sku}"')
    assert 3 <= body["count"] <= 5
    assert {e["sku"] for e in body["results"]} == {sku}
    channel = body["results"][0]["supplyChannel"]["id"]
    both = api.page("inventory", where=[f'sku = "{sku}"', f'supplyChannel(id = "{channel}")'])
    assert [e["id"] for e in both["results"]] == [body["results"][0]["id"]]
    expected = sum(1 for e in world["inventory"] if e["quantityOnStock"] > 500)
    assert api.page("inventory", where="quantityOnStock > 500", limit=1)["total"] == expected


def test_where_last_modified_with_variable(api: Api, world: dict) -> None:
    stamps = sorted({p["lastModifiedAt"] for p in world["products"]}, key=ts_key)
    since = stamps[len(stamps) // 2]
    expected = sorted(p["id"] for p in world["products"] if ts_key(p["lastModifiedAt"]) >= ts_key(since))
    body = api.page("product-projections", where="lastModifiedAt >= :since", **{"var.since": since}, limit=500)
    assert sorted(p["id"] for p in body["results"]) == expected
    # instants, not strings: the same moment written with an offset matches the same records
    shifted = ts_key(since).astimezone(datetime.fromisoformat("2020-01-01T00:00:00+02:00").tzinfo)
    iso = shifted.isoformat(timespec="milliseconds")
    body2 = api.page("product-projections", where=f'lastModifiedAt >= "{iso}"', limit=500)
    assert sorted(p["id"] for p in body2["results"]) == expected
    strictly = api.page("product-projections", where=f'lastModifiedAt > "{since}"', limit=500)
    assert strictly["count"] == len(expected) - sum(1 for p in world["products"] if p["lastModifiedAt"] == since)


def test_where_boolean_logic(api: Api, world: dict) -> None:
    body = api.page(
        "product-projections",
        where='(key = "prod-000001" or key = "prod-000002" or key = "prod-000003") and not (key = "prod-000002")',
    )
    assert sorted(p["key"] for p in body["results"]) == ["prod-000001", "prod-000003"]
    # repeated where parameters are ANDed
    body = api.page("product-projections", where=["version > 1", "version < 5"], limit=500)
    expected = sorted(p["id"] for p in world["products"] if 1 < p["version"] < 5)
    assert sorted(p["id"] for p in body["results"]) == expected
    assert body["total"] == len(expected)
    body = api.page("inventory", where="quantityOnStock = 0 or availableQuantity < 5", limit=1)
    assert body["total"] > 0
    assert api.page("product-projections", where="key is defined", limit=1)["total"] == SIM_PRODUCTS
    assert api.page("product-projections", where="key is not defined", limit=1)["total"] == 0
    escaped = api.page("product-projections", where='key = "prod-\\"000001"')
    assert escaped["count"] == 0


@pytest.mark.parametrize(
    ("where", "extra"),
    [
        ("id >", {}), ('id = "x" and', {}), ("((id = \"x\")", {}), ('id == "x"', {}), ('id = "x', {}),
        ("foo = 1", {}), ('masterVariant(color = "red")', {}), ("lastModifiedAt > :since", {}),
        ('lastModifiedAt > "yesterday"', {}), ("version = \"three\"", {}), ('id = "a" garbage', {}),
    ],
)  # fmt: skip
def test_bad_where(api: Api, where: str, extra: dict) -> None:
    body = assert_ct_error(api.get("product-projections", where=where, **extra), 400, "InvalidInput")
    assert body["message"].startswith(SYNTAX_PREFIX), body["message"]
    assert body["errors"][0]["message"].startswith("Malformed parameter: where: ")


def test_missing_variable_mentions_it(api: Api) -> None:
    body = assert_ct_error(api.get("inventory", where="lastModifiedAt > :since"), 400, "InvalidInput")
    assert ":since" in body["message"]


# ---------------------------------------------------------------------------------------------------
# keyset exports
# ---------------------------------------------------------------------------------------------------


def test_keyset_export_by_id(api: Api, world: dict) -> None:
    exported = api.export("product-projections", limit=37)
    ids = [p["id"] for p in exported]
    assert len(ids) == len(set(ids)) == SIM_PRODUCTS
    assert ids == sorted(p["id"] for p in world["products"])


def test_keyset_export_by_last_modified(api: Api, world: dict) -> None:
    seen: list[str] = []
    params: dict = {"sort": ["lastModifiedAt asc", "id asc"], "withTotal": "false", "limit": 250}
    while True:
        body = api.page("inventory", **params)
        seen += [e["id"] for e in body["results"]]
        if body["count"] < 250:
            break
        last = body["results"][-1]
        params.update({
            "where": "lastModifiedAt > :ts or (lastModifiedAt = :ts and id > :id)",
            "var.ts": last["lastModifiedAt"], "var.id": last["id"],
        })  # fmt: skip
    assert len(seen) == len(set(seen)) == len(world["inventory"])


# ---------------------------------------------------------------------------------------------------
# single resources
# ---------------------------------------------------------------------------------------------------


def test_get_by_id_and_key(api: Api, world: dict) -> None:
    product = world["products"][3]
    assert api.page(f"product-projections/{product['id']}") == product
    assert api.page(f"product-projections/key={product['key']}") == product
    entry = world["inventory"][10]
    assert api.page(f"inventory/{entry['id']}") == entry
    channels = api.page("channels", limit=50)["results"]
    assert 6 <= len(channels) <= 10
    assert api.page(f"channels/key={channels[0]['key']}")["id"] == channels[0]["id"]
    categories = api.page("categories", limit=50)["results"]
    assert any("parent" in c for c in categories)
    assert api.page(f"categories/{categories[0]['id']}")["key"] == categories[0]["key"]


def test_not_found_bodies(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    body = assert_ct_error(api.get(f"product-projections/{missing}"), 404, "ResourceNotFound")
    assert missing in body["message"]
    assert_ct_error(api.get("product-projections/key=prod-999999"), 404, "ResourceNotFound")
    assert_ct_error(api.get(f"inventory/{missing}"), 404, "ResourceNotFound")
    assert_ct_error(api.get("inventory/key=whatever"), 404, "ResourceNotFound")
    assert_ct_error(api.get("channels/a/b"), 404, "ResourceNotFound")


# ---------------------------------------------------------------------------------------------------
# the clean world
# ---------------------------------------------------------------------------------------------------


def test_clean_world_invariants(api: Api, world: dict) -> None:
    products, inventory = world["products"], world["inventory"]
    channel_ids = {c["id"] for c in api.page("channels", limit=50)["results"]}
    skus: list[str] = []
    for p in products:
        assert p["published"] is True and p["hasStagedChanges"] is False
        assert set(p["name"]) == {"en-US", "fr-FR"} and set(p["slug"]) == {"en-US", "fr-FR"}
        assert 1 <= len(p["categories"]) <= 2
        assert TS_RE.match(p["createdAt"]) and TS_RE.match(p["lastModifiedAt"])
        assert ts_key(p["createdAt"]) <= ts_key(p["lastModifiedAt"])
        vs = variants_of(p)
        assert 1 <= len(vs) <= 6
        assert [v["id"] for v in vs] == list(range(1, len(vs) + 1))
        for v in vs:
            assert SKU_RE.match(v["sku"]), v["sku"]
            skus.append(v["sku"])
            assert {pr["value"]["currencyCode"] for pr in v["prices"]} == {"USD", "EUR", "GBP"}
            for pr in v["prices"]:
                assert pr["value"]["type"] == "centPrecision" and pr["value"]["fractionDigits"] == 2
                assert isinstance(pr["value"]["centAmount"], int) and pr["value"]["centAmount"] > 0
                assert pr["country"] in {"US", "FR", "GB"}
            assert v["images"][0]["url"].startswith("https://")
            assert {a["name"] for a in v["attributes"]} >= {"brand", "shade"}
    assert len(skus) == len(set(skus))
    assert 3.0 <= len(skus) / len(products) <= 4.2
    per_sku: dict[str, list[str]] = {}
    for e in inventory:
        per_sku.setdefault(e["sku"], []).append(e["supplyChannel"]["id"])
        assert 0 <= e["availableQuantity"] <= e["quantityOnStock"]
        assert e["supplyChannel"]["id"] in channel_ids
        assert TS_RE.match(e["lastModifiedAt"])
    assert set(per_sku) == set(skus)
    for chans in per_sku.values():
        assert 3 <= len(chans) <= 5 and len(set(chans)) == len(chans)


def test_stats_match_the_api(commerce_sim: str, api: Api, world: dict) -> None:
    stats = admin(commerce_sim, "GET", "stats")
    c = stats["commerce"]
    products = world["products"]
    assert stats["seed"] == 7
    assert c["project_key"] == PROJECT
    assert c["products"] == len(products)
    assert c["variants"] == sum(len(variants_of(p)) for p in products)
    assert c["skus"] == len({v["sku"] for p in products for v in variants_of(p)})
    assert c["prices"] == sum(len(v["prices"]) for p in products for v in variants_of(p))
    assert c["inventory_entries"] == len(world["inventory"]) == api.page("inventory", limit=0)["total"]
    assert c["channels"] == api.page("channels", limit=0)["total"]
    assert c["categories"] == api.page("categories", limit=0)["total"]
    assert stats["requests"]["total"] > 0 and stats["requests"]["by_status"]["200"] > 0
    assert stats["tokens_issued"] >= 1


# ---------------------------------------------------------------------------------------------------
# admin: reset, churn, inject
# ---------------------------------------------------------------------------------------------------


def _fingerprint(api: Api) -> list[tuple]:
    return [
        (p["id"], p["key"], [(pr["id"], pr["value"]["centAmount"]) for v in variants_of(p) for pr in v["prices"]])
        for p in api.export("product-projections")
    ]


def test_reset_is_deterministic(clean_world: str, api: Api) -> None:
    first = _fingerprint(api)
    inv_first = [e["id"] for e in api.page("inventory", limit=100)["results"]]
    admin(clean_world, "POST", "reset", {"seed": 8})
    other = _fingerprint(api)
    assert {p[0] for p in other}.isdisjoint({p[0] for p in first})
    assert admin(clean_world, "POST", "reset", {"seed": 7})["commerce"]["products"] == SIM_PRODUCTS
    assert _fingerprint(api) == first
    assert [e["id"] for e in api.page("inventory", limit=100)["results"]] == inv_first
    stats = admin(clean_world, "POST", "reset", {"products": 50})
    assert stats["commerce"]["products"] == 50 and stats["seed"] == 7


def test_churn(clean_world: str, api: Api, world: dict) -> None:
    before = {p["id"]: p for p in world["products"]}
    inv_before = {e["id"]: e for e in world["inventory"]}
    newest = max(ts_key(r["lastModifiedAt"]) for r in [*world["products"], *world["inventory"]])
    result = admin(clean_world, "POST", "churn", {"products": 6, "inventory": 9})
    assert len(result["products"]) == len(set(result["products"])) == 6
    assert len(result["inventory"]) == len(set(result["inventory"])) == 9
    stamp = result["lastModifiedAt"]
    assert TS_RE.match(stamp) and ts_key(stamp) > newest
    for pid in result["products"]:
        now = api.page(f"product-projections/{pid}")
        old = before[pid]
        assert now["version"] == old["version"] + 1
        assert now["lastModifiedAt"] == stamp
        assert now["name"]["en-US"] != old["name"]["en-US"]
        old_prices = [pr["value"]["centAmount"] for v in variants_of(old) for pr in v["prices"]]
        new_prices = [pr["value"]["centAmount"] for v in variants_of(now) for pr in v["prices"]]
        assert old_prices != new_prices
    for eid in result["inventory"]:
        now = api.page(f"inventory/{eid}")
        assert now["version"] == inv_before[eid]["version"] + 1
        assert now["lastModifiedAt"] == stamp
        assert 0 <= now["availableQuantity"] <= now["quantityOnStock"]
    changed = api.page("product-projections", where="lastModifiedAt >= :t", **{"var.t": stamp}, limit=500)
    assert sorted(p["id"] for p in changed["results"]) == sorted(result["products"])
    # a later churn never goes back in time
    again = admin(clean_world, "POST", "churn", {"products": 1, "inventory": 1})
    assert ts_key(again["lastModifiedAt"]) >= ts_key(stamp)


def test_inject_plants_every_kind(clean_world: str, api: Api) -> None:
    planted = admin(clean_world, "POST", "inject", {})
    assert set(planted) == {
        "negative_price",
        "missing_sku",
        "duplicate_sku",
        "negative_stock",
        "unknown_currency",
        "orphan_inventory",
    }

    np = planted["negative_price"]
    p = api.page(f"product-projections/{np['product_id']}")
    price = next(pr for v in variants_of(p) for pr in v["prices"] if pr["id"] == np["price_id"])
    assert price["value"]["centAmount"] < 0
    assert any(v.get("sku") == np["sku"] for v in variants_of(p))
    assert p["version"] >= 2

    ms = planted["missing_sku"]
    p = api.page(f"product-projections/{ms['product_id']}")
    variant = next(v for v in variants_of(p) if v["id"] == ms["variant_id"])
    assert "sku" not in variant

    ds = planted["duplicate_sku"]
    holders = api.page("product-projections", where=f'sku = "{ds["sku"]}"')["results"]
    assert len(holders) == 2 and ds["product_id"] in {h["id"] for h in holders}

    ns = planted["negative_stock"]
    entry = api.page(f"inventory/{ns['inventory_entry_id']}")
    assert entry["quantityOnStock"] < 0 and entry["sku"] == ns["sku"]

    uc = planted["unknown_currency"]
    p = api.page(f"product-projections/{uc['product_id']}")
    price = next(pr for v in variants_of(p) for pr in v["prices"] if pr["id"] == uc["price_id"])
    assert price["value"]["currencyCode"] == "ZZZ"

    oi = planted["orphan_inventory"]
    assert oi["sku"] == "ZZZ-999999-99"
    orphan = api.page("inventory", where=f'sku = "{oi["sku"]}"')["results"]
    assert [e["id"] for e in orphan] == [oi["inventory_entry_id"]]
    assert api.page("product-projections", where=f'sku = "{oi["sku"]}"')["count"] == 0

    # every planted record is visible to an incremental sync
    stamps = {
        api.page(f"product-projections/{planted[k]['product_id']}")["lastModifiedAt"]
        for k in ("negative_price", "missing_sku", "duplicate_sku", "unknown_currency")
    }
    stamps |= {
        api.page(f"inventory/{planted[k]['inventory_entry_id']}")["lastModifiedAt"]
        for k in ("negative_stock", "orphan_inventory")
    }
    assert len(stamps) == 1
    stats = admin(clean_world, "GET", "stats")["commerce"]
    assert stats["inventory_entries"] == api.page("inventory", limit=0)["total"]

    only = admin(clean_world, "POST", "inject", {"kinds": ["orphan_inventory"]})
    assert set(only) == {"orphan_inventory"} and only["orphan_inventory"]["sku"] != oi["sku"]
    r = requests.post(f"{clean_world}/_admin/inject", json={"kinds": ["bogus"]}, timeout=10)
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------------------
# admin: faults
# ---------------------------------------------------------------------------------------------------


def test_faults_next_and_retry_after(clean_world: str, api: Api) -> None:
    try:
        admin(clean_world, "POST", "faults", {"faults": [{"status": 503, "next": 2}]})
        first, second = api.get("channels"), api.get("channels")
        assert_ct_error(first, 503, "OverCapacity")
        assert_ct_error(second, 503, "OverCapacity")
        assert first.headers["X-Correlation-ID"]
        assert api.get("channels").status_code == 200
        # admin endpoints are never faulted
        admin(clean_world, "POST", "faults", {"faults": [{"status": 429, "next": 1, "retry_after": "1"}]})
        assert requests.get(f"{clean_world}/_admin/stats", timeout=10).status_code == 200
        r = api.get("channels")
        assert_ct_error(r, 429, "TooManyRequests")
        assert r.headers["Retry-After"] == "1"
        assert api.get("channels").status_code == 200
        # every Nth, also on the token endpoint
        admin(clean_world, "POST", "faults", {"faults": [{"status": 502, "every": 3}]})
        statuses = [api.get("channels").status_code for _ in range(6)]
        assert statuses == [200, 200, 502, 200, 200, 502]
        admin(clean_world, "POST", "faults", {"faults": [{"status": 504, "next": 1}]})
        r = requests.post(
            f"{clean_world}/commerce/oauth/token", params={"grant_type": "client_credentials"}, auth=CREDS, timeout=10
        )
        assert_ct_error(r, 504, "GatewayTimeout")
        admin(clean_world, "POST", "faults", {"faults": [{"status": 500, "every": 1}]})
        assert_ct_error(api.get("channels"), 500, "General")
        assert admin(clean_world, "DELETE", "faults")["cleared"] == 1
        assert api.get("channels").status_code == 200
        stats = admin(clean_world, "GET", "stats")["requests"]["by_status"]
        assert stats["503"] >= 2 and stats["429"] >= 1 and stats["502"] >= 2
    finally:
        requests.delete(f"{clean_world}/_admin/faults", timeout=10)


def test_faults_transport_kinds(clean_world: str, api: Api) -> None:
    try:
        admin(clean_world, "POST", "faults", {"faults": [{"kind": "truncate", "next": 1}]})
        r = api.get("product-projections", limit=50)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        admin(clean_world, "POST", "faults", {"faults": [{"kind": "reset", "next": 1}]})
        with pytest.raises(requests.exceptions.RequestException):
            api.get("product-projections", limit=50).json()
        admin(clean_world, "POST", "faults", {"faults": [{"kind": "delay", "delay_ms": 300, "next": 1}]})
        t0 = time.monotonic()
        assert api.get("channels").status_code == 200
        assert time.monotonic() - t0 >= 0.3
        bad = requests.post(f"{clean_world}/_admin/faults", json={"faults": [{"status": 200}]}, timeout=10)
        assert bad.status_code == 400
    finally:
        requests.delete(f"{clean_world}/_admin/faults", timeout=10)


# ---------------------------------------------------------------------------------------------------
# process and in-process API
# ---------------------------------------------------------------------------------------------------


def test_cli_prints_start_line_and_exits_cleanly() -> None:
    sim = start_sim(products=20, seed=3)
    try:
        assert requests.get(f"{sim.url}/_admin/stats", timeout=5).json()["commerce"]["products"] == 20
        assert sim.stop(signal.SIGINT) == 0
        first_line = sim.output().splitlines()[0]
        assert first_line == (
            f"simulators serving on http://127.0.0.1:{sim.port} (commerce project beauty-hub, 20 products, seed 3)"
        )
    finally:
        sim.close()


def test_start_in_thread() -> None:
    from simulators.server import start_in_thread

    handle = start_in_thread(products=10, seed=1, client_secret="s3cret", token_ttl=60)
    try:
        assert handle.port > 0 and handle.url == f"http://127.0.0.1:{handle.port}"
        r = requests.post(
            f"{handle.url}/commerce/oauth/token",
            params={"grant_type": "client_credentials"},
            auth=("hub-client", "s3cret"),
            timeout=5,
        )
        assert r.status_code == 200 and r.json()["expires_in"] == 60
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        body = requests.get(f"{handle.url}/commerce/{PROJECT}/product-projections", headers=headers, timeout=5).json()
        assert body["total"] == 10
    finally:
        handle.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{handle.url}/_admin/stats", timeout=2)


def test_cli_run_wraps_a_command() -> None:
    import subprocess
    import sys

    from tests.simulators.conftest import REPO_ROOT

    probe = (
        "import os, sys, urllib.request; "
        "print(urllib.request.urlopen(os.environ['SIMULATORS_URL'] + '/_admin/health').read().decode()); "
        "sys.exit(3)"
    )
    done = subprocess.run(
        [sys.executable, "-m", "simulators", "run", "--port", "0", "--products", "5", "--quiet", "--",
         sys.executable, "-c", probe],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("simulators serving on http://127.0.0.1:")
    assert lines[1] == '{"status":"ok"}'
