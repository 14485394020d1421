"""Contract tests for the Stripe-compatible payment gateway simulator (real HTTP, subprocess)."""

from __future__ import annotations

import base64
import re
import time

import pytest
import requests
import stripe

from tests.simulators.test_commerce_contract import Api, admin

KEY = "sk_test_hub"
AUTH = {"Authorization": f"Bearer {KEY}"}
LISTS = ("charges", "refunds", "disputes", "payment_intents", "balance_transactions", "events")
PREFIXES = {
    "charges": "ch_",
    "refunds": "re_",
    "disputes": "dp_",
    "payment_intents": "pi_",
    "balance_transactions": "txn_",
    "events": "evt_",
}
ID_RE = re.compile(r"^[a-z]+_[0-9A-Za-z]{24}$")
THIRTY_DAYS = 30 * 86_400


def get(base: str, path: str, headers: dict | None = None, **params) -> requests.Response:
    return requests.get(
        f"{base}/payments{path}", headers=AUTH if headers is None else headers, params=params, timeout=30
    )


def ok(base: str, path: str, **params) -> dict:
    r = get(base, path, **params)
    assert r.status_code == 200, r.text
    return r.json()


def walk(base: str, name: str, limit: int = 100, **params) -> list[dict]:
    """Every object of a list, newest first, by starting_after."""
    out: list[dict] = []
    cursor: dict = {}
    while True:
        body = ok(base, f"/v1/{name}", limit=limit, **params, **cursor)
        out += body["data"]
        if not body["has_more"]:
            return out
        cursor = {"starting_after": body["data"][-1]["id"]}


def stripe_error(r: requests.Response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error.get("code") == code and error.get("param") == param
    return error


@pytest.fixture(scope="module")
def world(commerce_sim: str) -> dict:
    """The clean world's payments and orders, listed once."""
    admin(commerce_sim, "POST", "reset", {"seed": 7, "products": 300})
    out = {name: walk(commerce_sim, name) for name in LISTS}
    out["orders"] = Api(commerce_sim).export("orders")
    return out


# ---------------------------------------------------------------------------------------------------
# auth and errors
# ---------------------------------------------------------------------------------------------------


def test_auth_is_required_and_rejected_keys_are_masked(commerce_sim: str) -> None:
    missing = stripe_error(get(commerce_sim, "/v1/charges", headers={}), 401)
    assert "You did not provide an API key" in missing["message"]
    wrong = "sk_test_0123456789abcdefWXYZ"
    error = stripe_error(get(commerce_sim, "/v1/charges", headers={"Authorization": f"Bearer {wrong}"}), 401)
    assert error["message"].startswith("Invalid API Key provided: sk_test_****") and error["message"].endswith("WXYZ")
    assert wrong not in error["message"]
    expired = get(commerce_sim, "/v1/charges", headers={"Authorization": "Bearer sk_test_expired_hub"})
    assert stripe_error(expired, 401, "api_key_expired")["message"].startswith("Expired API Key provided: sk_test_")
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    assert get(commerce_sim, "/v1/charges", headers={"Authorization": f"Basic {basic}"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"limit": 0}, "parameter_invalid_integer", "limit"),
        ({"limit": 101}, "parameter_invalid_integer", "limit"),
        ({"limit": "ten"}, "parameter_invalid_integer", "limit"),
        ({"created[gte]": "yesterday"}, "parameter_invalid_integer", "created[gte]"),
        ({"starting_after": "ch_a", "ending_before": "ch_b"}, "parameters_exclusive", "ending_before"),
        ({"starting_after": "ch_000000000000000000000000"}, "resource_missing", "starting_after"),
        ({"colour": "blue"}, "parameter_unknown", "colour"),
    ],
)
def test_bad_list_parameters_answer_400(commerce_sim: str, params: dict, code: str, param: str) -> None:
    stripe_error(get(commerce_sim, "/v1/charges", **params), 400, code, param)


def test_unknown_objects_and_urls_answer_404(commerce_sim: str) -> None:
    stripe_error(get(commerce_sim, "/v1/charges/ch_nope"), 404, "resource_missing", "id")
    stripe_error(get(commerce_sim, "/v1/customers"), 404, "resource_missing")
    r = requests.post(f"{commerce_sim}/payments/v1/charges", headers=AUTH, timeout=10)
    assert r.status_code == 405


def test_rate_limits_answer_429_with_a_stripe_body(clean_world: str) -> None:
    rule = {"status": 429, "next": 1, "retry_after": "1", "path_prefix": "/payments"}
    admin(clean_world, "POST", "faults", {"faults": [rule]})
    r = get(clean_world, "/v1/charges")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "rate_limit"
    assert get(clean_world, "/v1/charges").status_code == 200


# ---------------------------------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_list_envelope_order_and_retrieve(commerce_sim: str, world: dict, name: str) -> None:
    body = ok(commerce_sim, f"/v1/{name}")
    assert body["object"] == "list" and body["url"] == f"/v1/{name}"
    assert len(body["data"]) == min(10, len(world[name])) and body["has_more"] == (len(world[name]) > 10)
    objects = world[name]
    assert objects and len({o["id"] for o in objects}) == len(objects)
    assert all(o["id"].startswith(PREFIXES[name]) and ID_RE.match(o["id"]) for o in objects)
    keys = [(o["created"], o["id"]) for o in objects]
    assert keys == sorted(keys, reverse=True)
    assert len(set(o["created"] for o in objects)) < len(objects) or name in ("disputes", "refunds")  # ties
    assert ok(commerce_sim, f"/v1/{name}/{objects[-1]['id']}") == objects[-1]


def test_ending_before_pages_backwards(commerce_sim: str, world: dict) -> None:
    charges = world["charges"]
    position = {c["id"]: i for i, c in enumerate(charges)}
    back: list[dict] = []
    cursor = charges[-1]["id"]
    while True:
        body = ok(commerce_sim, "/v1/charges", limit=13, ending_before=cursor)
        end = position[cursor]
        assert body["data"] == charges[max(0, end - 13) : end]  # the objects just newer than the cursor
        assert body["has_more"] == (end > 13)
        back = body["data"] + back
        if not body["has_more"]:
            break
        cursor = body["data"][0]["id"]
    assert back == charges[:-1]


def test_created_filters(commerce_sim: str, world: dict) -> None:
    charges = world["charges"]
    t = sorted(c["created"] for c in charges)[len(charges) // 3]
    for op, keep in (
        ("gte", lambda c: c >= t),
        ("gt", lambda c: c > t),
        ("lte", lambda c: c <= t),
        ("lt", lambda c: c < t),
    ):
        got = walk(commerce_sim, "charges", **{f"created[{op}]": t})
        assert [c["id"] for c in got] == [c["id"] for c in charges if keep(c["created"])], op
    assert [c["id"] for c in walk(commerce_sim, "charges", created=t)] == [
        c["id"] for c in charges if c["created"] == t
    ]


def test_filters_by_parent(commerce_sim: str, world: dict) -> None:
    refund = world["refunds"][0]
    assert [r["id"] for r in walk(commerce_sim, "refunds", charge=refund["charge"])] == [
        r["id"] for r in world["refunds"] if r["charge"] == refund["charge"]
    ]
    fees = walk(commerce_sim, "balance_transactions", type="refund")
    assert fees and {t["type"] for t in fees} == {"refund"} and all(t["amount"] < 0 for t in fees)


# ---------------------------------------------------------------------------------------------------
# objects and the world they describe
# ---------------------------------------------------------------------------------------------------


def test_charges_carry_stripe_fields(world: dict) -> None:
    for c in world["charges"]:
        assert c["object"] == "charge" and c["currency"] in {"usd", "eur", "gbp"}
        assert 0 <= c["amount_refunded"] <= c["amount_captured"] <= c["amount"]
        assert c["refunded"] == (c["amount_refunded"] == c["amount"] > 0)
        assert c["paid"] == (c["status"] == "succeeded")
        assert c["outcome"]["risk_level"] in {"normal", "elevated", "highest"}
        assert 0 <= c["outcome"]["risk_score"] <= 100
        assert c["payment_intent"].startswith("pi_")
    assert {c["status"] for c in world["charges"]} == {"succeeded", "failed"}
    assert {c["outcome"]["risk_level"] for c in world["charges"]} >= {"normal", "elevated"}


def test_the_world_has_what_a_reconciliation_must_find(world: dict) -> None:
    orders = {o["id"]: o for o in world["orders"]}
    charges = world["charges"]
    linked = [c for c in charges if c["metadata"].get("order_id") in orders]
    assert len(linked) > 0.8 * len(charges)
    charged = {c["metadata"]["order_id"] for c in linked}
    unpaid = [o for o in orders.values() if o["id"] not in charged]
    assert unpaid and any(o["paymentState"] == "Pending" for o in unpaid)
    paid = [c for c in linked if orders[c["metadata"]["order_id"]]["paymentState"] == "Paid"]
    assert sum(c["amount"] == orders[c["metadata"]["order_id"]]["totalPrice"]["centAmount"] for c in paid) > 0.9 * len(
        paid
    )
    assert any(c["amount"] != orders[c["metadata"]["order_id"]]["totalPrice"]["centAmount"] for c in linked)
    assert any(c["currency"].upper() == orders[c["metadata"]["order_id"]]["totalPrice"]["currencyCode"] for c in linked)
    assert any("order_id" not in c["metadata"] for c in charges)  # charges with no order
    by_id = {c["id"]: c for c in charges}
    orphan_refunds = [r for r in world["refunds"] if by_id[r["charge"]]["metadata"].get("order_id") not in orders]
    assert orphan_refunds and all("order_id" in by_id[r["charge"]]["metadata"] for r in orphan_refunds)
    assert any(r["amount"] < by_id[r["charge"]]["amount"] for r in world["refunds"])  # partial
    assert any(r["amount"] == by_id[r["charge"]]["amount"] for r in world["refunds"])  # full
    disputed = [c for c in charges if c["disputed"]]
    assert disputed and {d["charge"] for d in world["disputes"]} == {c["id"] for c in disputed}


def test_balance_transactions_and_payment_intents_match_their_sources(world: dict) -> None:
    sources = {o["id"]: o for o in (*world["charges"], *world["refunds"], *world["disputes"])}
    for txn in world["balance_transactions"]:
        assert txn["net"] == txn["amount"] - txn["fee"] and txn["fee"] >= 0
        assert txn["type"] in {"charge", "refund", "adjustment"} and txn["source"] in sources
    intents = {pi["id"]: pi for pi in world["payment_intents"]}
    for charge in world["charges"]:
        assert intents[charge["payment_intent"]]["latest_charge"] == charge["id"]


def test_events_cover_thirty_days_only(commerce_sim: str, world: dict) -> None:
    now = time.time()
    events = world["events"]
    assert events and all(e["created"] >= now - THIRTY_DAYS - 5 for e in events)
    assert {e["type"] for e in events} >= {"charge.succeeded", "charge.refunded", "refund.created"}
    stats = admin(commerce_sim, "GET", "stats")["payments"]
    assert stats["events"] > stats["events_listable"] == len(events)
    assert all(e["data"]["object"]["id"] for e in events)
    refunded = [e for e in events if e["type"] == "charge.refunded"]
    assert all("amount_refunded" in e["data"]["previous_attributes"] for e in refunded)
    charge_events = walk(commerce_sim, "events", type="charge.*")
    assert [e["id"] for e in charge_events] == [e["id"] for e in events if e["type"].startswith("charge.")]
    old = ok(commerce_sim, "/v1/charges", limit=1, **{"created[lt]": int(now) - THIRTY_DAYS - 86_400})["data"]
    assert old and not walk(commerce_sim, "events", **{"created[lte]": old[0]["created"] + 60})


# ---------------------------------------------------------------------------------------------------
# admin: churn, inject, stats
# ---------------------------------------------------------------------------------------------------


def test_churn_creates_charges_refunds_and_events(clean_world: str) -> None:
    before = admin(clean_world, "GET", "stats")["payments"]
    result = admin(clean_world, "POST", "churn", {"payments": 3})["payments"]
    assert len(result["charges_created"]) == 3 and len(result["refunds_created"]) == 3
    after = admin(clean_world, "GET", "stats")["payments"]
    assert after["charges"] == before["charges"] + 3 and after["refunds"] == before["refunds"] + 3
    newest = ok(clean_world, "/v1/events", limit=100)["data"][: len(result["events_created"])]
    assert {e["id"] for e in newest} == set(result["events_created"])
    assert {e["type"] for e in newest} == {"charge.succeeded", "charge.refunded", "refund.created"}
    for refund_id in result["refunds_created"]:
        refund = ok(clean_world, f"/v1/refunds/{refund_id}")
        assert ok(clean_world, f"/v1/charges/{refund['charge']}")["amount_refunded"] >= refund["amount"]


def test_inject_plants_payment_kinds_only_when_asked(clean_world: str) -> None:
    default = admin(clean_world, "POST", "inject", {})
    assert not set(default) & {"refund_exceeds_charge", "negative_charge_amount"}
    planted = admin(clean_world, "POST", "inject", {"kinds": ["refund_exceeds_charge", "unknown_payment_currency"]})
    over = ok(clean_world, f"/v1/charges/{planted['refund_exceeds_charge']['payment_id']}")
    assert over["amount_refunded"] > over["amount"]
    assert ok(clean_world, f"/v1/charges/{planted['unknown_payment_currency']['payment_id']}")["currency"] == "zzz"


# ---------------------------------------------------------------------------------------------------
# Stripe's own client
# ---------------------------------------------------------------------------------------------------


def test_the_stripe_client_lists_every_charge(commerce_sim: str, world: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_base", f"{commerce_sim}/payments")
    monkeypatch.setattr(stripe, "api_key", KEY)
    ids = [c.id for c in stripe.Charge.list(limit=50).auto_paging_iter()]
    assert ids == [c["id"] for c in world["charges"]]
    assert stripe.Charge.retrieve(ids[0]).amount == world["charges"][0]["amount"]
    refunds = [r.id for r in stripe.Refund.list(limit=3).auto_paging_iter()]
    assert refunds == [r["id"] for r in world["refunds"]]
    with pytest.raises(stripe.AuthenticationError):
        stripe.Charge.list(api_key="sk_test_wrong_but_long_enough")
