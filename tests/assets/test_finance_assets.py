"""Payment reconciliation: known answers per status, money that adds up, and every status from the simulator."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.finance import PAYMENT_RECONCILIATION, STATUSES, FinanceRules, finance_assets, reconcile
from assets.orders import ORDERS, orders_assets
from assets.payments import DISPUTES, PAYMENTS, RAW_PAYMENTS_ASSETS, REFUNDS, payments_assets
from quality.checks import build_suite_checks
from quality.finance import FINANCE_SUITES
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource
from tests.conftest import Simulator, every_resource


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every serving test here runs on DuckDB and on Postgres."""
    return each_hub


REPO_RULES = Path(__file__).resolve().parents[2] / "dagster_project" / "rules.yaml"
CHECKS = build_suite_checks(FINANCE_SUITES, pool=HUB_POOL)


def write(hub: HubResource, spec: TableSpec, rows: list[dict]) -> None:
    """Load `rows` (missing columns are null) into a core table of the hub."""
    with hub.load(f"test:{spec.name}") as load:
        load.stage(spec).append(spec.to_arrow({c: [r.get(c) for r in rows] for c in spec.column_names}))


def order(order_id: str, total: int, currency: str = "EUR") -> dict:
    return {"order_id": order_id, "version": 1, "order_number": f"N-{order_id}", "currency": currency,
            "total_cent_amount": total, "payment_state": "Paid"}  # fmt: skip


def charge(payment_id: str, order_id: str | None, captured: int, **extra) -> dict:
    return {"payment_id": payment_id, "order_id": order_id, "amount": captured, "amount_captured": captured,
            "amount_refunded": 0, "currency": "EUR", "status": "succeeded", "risk_level": "normal",
            "disputed": False, **extra}  # fmt: skip


def refund(refund_id: str, payment_id: str, amount: int, order_id: str | None = None, status="succeeded") -> dict:
    return {"refund_id": refund_id, "payment_id": payment_id, "order_id": order_id, "amount": amount,
            "currency": "EUR", "status": status}  # fmt: skip


def materialize(hub: HubResource, rules_path: Path = REPO_RULES) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*finance_assets, *CHECKS], resources={"hub": hub, "rules": RulesResource(path=str(rules_path))}
    )


def rows(hub: HubResource) -> dict[str, dict]:
    frame = hub.read_frame(f"SELECT * FROM {PAYMENT_RECONCILIATION.name}")
    return {r["reconciliation_id"]: r for r in frame.to_dict("records")}


def test_each_reconciliation_status_on_a_hand_built_world(hub: HubResource):
    write(hub, ORDERS, [
        order("o-matched", 5000), order("o-unpaid", 3000), order("o-short", 4000), order("o-disputed", 2500),
        order("o-refunded", 6000), order("o-other-currency", 1000), order("o-failed", 1500),
    ])  # fmt: skip
    write(hub, PAYMENTS, [
        charge("ch-matched", "o-matched", 5000),
        charge("ch-short", "o-short", 3500, risk_level="elevated"),
        charge("ch-disputed", "o-disputed", 2500, disputed=True, risk_level="highest"),
        charge("ch-refunded", "o-refunded", 6000),
        charge("ch-usd", "o-other-currency", 1000, currency="USD"),
        charge("ch-failed", "o-failed", 0, status="failed", risk_level="highest"),
        charge("ch-no-order", None, 700),
        charge("ch-ghost-order", "o-ghost", 900),
    ])  # fmt: skip
    write(hub, REFUNDS, [
        refund("re-partial", "ch-refunded", 2000),
        refund("re-failed", "ch-matched", 5000, status="failed"),
        refund("re-ghost", "ch-ghost-order", 900, order_id="o-ghost"),
        refund("re-lost", "ch-unknown", 300, order_id="o-nowhere"),
    ])  # fmt: skip
    write(hub, DISPUTES, [{"dispute_id": "dp-1", "payment_id": "ch-disputed", "amount": 2500, "currency": "EUR"}])

    result = materialize(hub)
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    got = rows(hub)
    assert {k: v["status"] for k, v in got.items()} == {
        "o-matched": "matched",
        "o-unpaid": "unpaid",
        "o-short": "amount_mismatch",
        "o-disputed": "disputed",
        "o-refunded": "matched",
        "o-other-currency": "amount_mismatch",
        "o-failed": "unpaid",
        "ch-no-order": "payment_without_order",
        "ch-ghost-order": "refund_without_order",
        "re-lost": "refund_without_order",
    }
    assert (got["o-short"]["captured_amount"], got["o-short"]["difference_amount"]) == (3500, -500)
    assert (got["o-refunded"]["refunded_amount"], got["o-refunded"]["net_amount"]) == (2000, 4000)
    assert got["o-matched"]["refunded_amount"] == 0  # a failed refund moves no money
    assert (got["o-disputed"]["disputed"], got["o-disputed"]["disputed_amount"]) == (True, 2500)
    assert got["o-failed"]["risk_level"] == "highest" and got["o-short"]["risk_level"] == "elevated"
    assert pd.isna(got["o-unpaid"]["risk_level"]) and got["o-unpaid"]["payment_count"] == 0
    assert (got["ch-ghost-order"]["row_kind"], got["ch-ghost-order"]["order_id"]) == ("payment", "o-ghost")
    assert pd.isna(got["ch-ghost-order"]["order_total"])
    assert (got["re-lost"]["row_kind"], got["re-lost"]["refunded_amount"]) == ("refund", 300)


def test_the_tolerance_comes_from_the_rules(hub: HubResource, tmp_path: Path):
    write(hub, ORDERS, [order("o-1", 5000)])
    write(hub, PAYMENTS, [charge("ch-1", "o-1", 4990)])
    rules = tmp_path / "rules.yaml"
    rules.write_text("finance:\n  amount_tolerance_minor: 10\n")
    assert materialize(hub, rules).success
    assert rows(hub)["o-1"]["status"] == "matched"
    rules.write_text("finance:\n  amount_tolerance_minor: -1\n")
    with pytest.raises(Exception, match=r"finance\.amount_tolerance_minor"):
        materialize(hub, rules)


# --- money adds up -----------------------------------------------------------------------------

_ids = st.sampled_from([f"o{i}" for i in range(6)] + [None, "ghost"])
_money = st.integers(min_value=0, max_value=100_000)


@st.composite
def worlds(draw):
    orders = pd.DataFrame(
        [order(f"o{i}", draw(_money)) for i in range(draw(st.integers(0, 4)))],
        columns=["order_id", "order_number", "payment_state", "currency", "total_cent_amount"],
    )
    payments = pd.DataFrame(
        [
            charge(f"ch{i}", draw(_ids), draw(_money), status=draw(st.sampled_from(["succeeded", "failed"])),
                   disputed=draw(st.booleans()), risk_level=draw(st.sampled_from(["normal", "elevated", None])))
            for i in range(draw(st.integers(0, 6)))
        ],
        columns=["payment_id", "order_id", "amount_captured", "currency", "status", "risk_level", "disputed"],
    )  # fmt: skip
    payment_ids = [f"ch{i}" for i in range(len(payments))] + ["ch-unknown"]
    refunds = pd.DataFrame(
        [
            refund(f"re{i}", draw(st.sampled_from(payment_ids)), draw(_money), draw(_ids),
                   draw(st.sampled_from(["succeeded", "pending", "failed"])))
            for i in range(draw(st.integers(0, 6)))
        ],
        columns=["refund_id", "payment_id", "order_id", "amount", "currency", "status"],
    )  # fmt: skip
    return orders, payments, refunds


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_money_adds_up_per_order_and_overall(world):
    orders, payments, refunds = world
    rules = FinanceRules()
    columns = reconcile(orders, payments, refunds, pd.DataFrame(columns=["dispute_id", "payment_id", "amount"]), rules)
    frame = pd.DataFrame(columns)
    assert frame["reconciliation_id"].is_unique
    assert set(frame["status"]) <= set(STATUSES)
    assert set(orders["order_id"]) <= set(frame["reconciliation_id"])
    # every row: net = captured - refunded, difference = captured - total
    assert (frame["net_amount"] == frame["captured_amount"] - frame["refunded_amount"]).all()
    with_order = frame[frame["row_kind"] == "order"]
    assert (with_order["difference_amount"] == with_order["captured_amount"] - with_order["order_total"]).all()
    # totals are the sums of their parts: no payment or counted refund is lost or counted twice
    captured = payments.loc[payments["status"] == "succeeded", "amount_captured"].sum()
    counted = refunds.loc[refunds["status"].isin(rules.counted_refund_statuses), "amount"]
    assert frame["captured_amount"].sum() == captured
    assert frame["refunded_amount"].sum() == counted.sum()
    assert frame["payment_count"].sum() == len(payments)
    assert frame["refund_count"].sum() == len(counted)
    for row in with_order.to_dict("records"):
        mine = payments[(payments["order_id"] == row["reconciliation_id"]) & (payments["status"] == "succeeded")]
        assert row["captured_amount"] == mine["amount_captured"].sum()
        if row["status"] == "matched":
            assert row["captured_amount"] == row["order_total"]


# --- the simulator's world ---------------------------------------------------------------------


def test_the_simulator_world_has_every_status(simulator: Simulator, hub: HubResource, tmp_path: Path):
    resources = every_resource(simulator, hub, tmp_path)
    config = {"ops": {a.op.name: {"config": {"mode": "full"}} for a in RAW_PAYMENTS_ASSETS}}
    assert dg.materialize([*orders_assets, *payments_assets], resources=resources, run_config=config).success
    result = dg.materialize(
        [*finance_assets, *CHECKS], resources={"hub": hub, "rules": RulesResource(path=str(REPO_RULES))}
    )
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    frame = hub.read_frame(f"SELECT * FROM {PAYMENT_RECONCILIATION.name}")
    assert set(frame["status"]) == set(STATUSES)
    stats = simulator.stats()
    assert (frame["row_kind"] == "order").sum() == stats["commerce"]["orders"]
    payments = hub.read_frame("SELECT sum(amount_captured) AS c FROM core.payments WHERE status = 'succeeded'")
    assert frame["captured_amount"].sum() == payments["c"].iloc[0]
