"""Materialize the payments group into a temp hub from the simulator over HTTP."""

from __future__ import annotations

import json

import dagster as dg

from assets.payments import PAYMENTS_CORE_TABLES, RAW_PAYMENTS_ASSETS, payments_assets
from quality.checks import build_suite_checks
from quality.payments import PAYMENTS_SUITES
from resources.hub import HUB_POOL, HubResource
from resources.payments import StripeResource
from tests.conftest import Simulator
from tests.resources.test_payments import payments_resource

CHECKS = build_suite_checks(PAYMENTS_SUITES, pool=HUB_POOL)


def run(hub: HubResource, payments: StripeResource, *, mode: str = "full", **kwargs) -> dg.ExecuteInProcessResult:
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_PAYMENTS_ASSETS}}
    return dg.materialize(
        [*payments_assets, *CHECKS], resources={"hub": hub, "payments": payments}, run_config=config, **kwargs
    )


def counts(hub: HubResource, tables: list[str]) -> dict[str, int]:
    return {t: int(hub.scalar(f"SELECT count(*) FROM {t}")) for t in tables}


def checksums(hub: HubResource) -> dict[str, tuple]:
    return {
        t.name: tuple(hub.read_frame(f"SELECT count(*) AS n, sum(hash(COLUMNS(*))) FROM {t.name}").iloc[0])
        for t in PAYMENTS_CORE_TABLES
    }


def changed(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    return {
        e.asset_key.to_user_string(): e.materialization.metadata["rows_changed"].value
        for e in result.get_asset_materialization_events()
    }


def test_every_payments_table_matches_the_simulator(simulator: Simulator, each_hub: HubResource):
    result = run(each_hub, payments_resource(simulator))
    assert result.success
    stats = simulator.stats()["payments"]
    expected = {
        "core.payments": stats["charges"],
        "core.refunds": stats["refunds"],
        "core.disputes": stats["disputes"],
        "core.balance_transactions": stats["balance_transactions"],
        "raw.payments_charges": stats["charges"],
        "raw.payments_payment_intents": stats["payment_intents"],
        "raw.payments_events": stats["events_listable"],
    }
    assert counts(each_hub, list(expected)) == expected
    assert all(v > 0 for v in expected.values())
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {s.name for s in PAYMENTS_SUITES} | {
        "counts_reconcile",
        "bad_rows_within_threshold",
    }
    assert all(e.passed for e in evaluations)
    # money is minor units with upper-case ISO currencies; refunds and disputes point at charges
    assert set(each_hub.read_frame("SELECT DISTINCT currency FROM core.payments")["currency"]) <= {"USD", "EUR", "GBP"}
    assert (
        each_hub.scalar(
            "SELECT count(*) FROM core.refunds WHERE payment_id NOT IN (SELECT payment_id FROM core.payments)"
        )
        == 0
    )
    assert each_hub.scalar("SELECT count(*) FROM core.payments WHERE disputed") == stats["disputes"]
    assert each_hub.scalar("SELECT count(*) FROM core.payments WHERE order_id IS NULL") > 0  # charges with no order


def test_a_second_run_changes_nothing(simulator: Simulator, hub: HubResource):
    payments = payments_resource(simulator)
    run(hub, payments)
    before = checksums(hub)
    second = changed(run(hub, payments))
    assert checksums(hub) == before
    assert second == {key: 0 for key in second}


def test_an_incremental_run_lands_new_charges_refunds_and_their_changed_charges(simulator: Simulator, hub: HubResource):
    payments = payments_resource(simulator)
    run(hub, payments)
    churned = simulator.admin("POST", "churn", payments=4)["payments"]
    result = run(hub, payments, mode="incremental")
    assert result.success
    stats = simulator.stats()["payments"]
    assert counts(hub, ["core.payments", "core.refunds"]) == {
        "core.payments": stats["charges"],
        "core.refunds": stats["refunds"],
    }
    reported = changed(result)
    assert reported["raw/payments_refunds"] == 4
    assert reported["raw/payments_events"] == len(churned["events_created"])
    # 4 new charges, plus the refunded charges whose amount_refunded moved
    refunded = {payments.get("refunds", r)["charge"] for r in churned["refunds_created"]}
    assert reported["core/payments"] == len(set(churned["charges_created"]) | refunded)
    for charge_id in refunded:
        api = payments.get("charges", charge_id)
        row = hub.read_frame("SELECT amount_refunded, refunded FROM core.payments WHERE payment_id = ?", [charge_id])
        assert tuple(row.iloc[0]) == (api["amount_refunded"], api["refunded"])


def test_planted_payment_records_are_quarantined_with_their_rules(simulator: Simulator, hub: HubResource):
    kinds = ["refund_exceeds_charge", "negative_charge_amount", "unknown_payment_currency", "risk_score_out_of_range"]
    planted = simulator.admin("POST", "inject", kinds=kinds)
    result = run(hub, payments_resource(simulator), raise_on_error=False)
    # Each bad charge breaks a row rule: it waits in quarantine, named with its rules; the rest loads.
    assert result.success
    frame = hub.read_frame(
        "SELECT record_key, expectation FROM quality.quarantine WHERE dataset = 'core.payments' "
        "AND expectation IS NOT NULL"
    )
    held = {json.loads(r.record_key)["payment_id"]: r.expectation.split("; ") for r in frame.itertuples()}
    assert held == {
        planted["refund_exceeds_charge"]["payment_id"]: [REFUND_ABOVE_AMOUNT],
        planted["negative_charge_amount"]["payment_id"]: [
            "expect_column_values_to_be_between(amount, min_value=0)",
            REFUND_ABOVE_AMOUNT,  # -amount < 0 refunded
        ],
        planted["unknown_payment_currency"]["payment_id"]: ["expect_column_values_to_be_in_set(currency)"],
        planted["risk_score_out_of_range"]["payment_id"]: [
            "expect_column_values_to_be_between(risk_score, min_value=0, max_value=100)"
        ],
    }
    assert not hub.scalar("SELECT count(*) FROM core.payments WHERE payment_id IN (?, ?, ?, ?)", list(held))
    assert all(e.passed for e in result.get_asset_check_evaluations())


REFUND_ABOVE_AMOUNT = "expect_column_pair_values_a_to_be_greater_than_b(amount, amount_refunded, or_equal=True)"


def test_a_wrong_key_fails_the_run_naming_the_setting(simulator: Simulator, hub: HubResource):
    wrong = "sk_test_not_the_key_4d7f0a21"
    result = run(hub, payments_resource(simulator, api_key=wrong, max_attempts=1), raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all("PAYMENTS_API_KEY" in str(e.step_failure_data.error) for e in failures)
    assert wrong not in " ".join(str(e) for e in result.all_events)
