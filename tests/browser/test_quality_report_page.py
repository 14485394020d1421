"""The data-quality report and the Data Docs it links, opened in Chromium, offline.

The hub is filled by the real suite checks (Great Expectations, Data Docs, quality.validation_runs) on
two small runs of core.prices and core.products, the second with a planted negative price, plus
quarantined rows. Data Docs load their scripts and styles from the copies quality/data_docs.py vendors.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import expect

from assets.commerce import PRICES, PRODUCTS
from quality.checks import build_suite_checks
from quality.commerce import prices_suite, products_suite
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from quality.report import write_report
from quality.validation import build_data_docs_index
from resources.hub import HubResource
from tests.browser.conftest import Watched

GX_TITLE = "Great Expectations"


@dg.asset(key=["core", "products"])
def core_products() -> None:
    return None


@dg.asset(key=["core", "prices"])
def core_prices() -> None:
    return None


def price(price_id: str, cent_amount: int) -> dict:
    return dict(
        price_id=price_id, product_id="p1", variant_id=1, sku="SKU-1", currency="EUR", cent_amount=cent_amount,
        fraction_digits=2, country="DE", channel_id=None, valid_from=None, valid_until=None,
    )  # fmt: skip


def load_and_check(hub: HubResource, prices: list[dict]) -> None:
    """One load of the catalog tables, then one Dagster run of their real suite checks."""
    products = {c: [None] for c in PRODUCTS.column_names} | {"product_id": ["p1"], "version": [1], "variant_count": [1]}
    with hub.load("test:catalog") as load:
        load.stage(PRODUCTS).append(PRODUCTS.to_arrow(products))
        load.stage(PRICES).append(PRICES.to_arrow({c: [p[c] for p in prices] for c in PRICES.column_names}))
    checks = build_suite_checks([products_suite, prices_suite], pool="hub")
    dg.materialize([core_products, core_prices, *checks], resources={"hub": hub}, raise_on_error=False)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> HubResource:
    return HubResource(url=f"duckdb:///{tmp_path_factory.mktemp('hub') / 'hub.duckdb'}")


@pytest.fixture(scope="module")
def report(hub: HubResource, tmp_path_factory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QUALITY_DIR", str(tmp_path_factory.mktemp("quality")))
        load_and_check(hub, [price("pr-1", 1999)])
        bad = [Quarantined(line=i + 2, reason="cent_amount below zero", record={"cent_amount": -i}) for i in range(3)]
        with hub.load("test:quarantine") as load:
            load.stage(QUARANTINE).append(quarantine_rows("core.prices", "prices-api", None, bad, datetime.now(UTC)))
        load_and_check(hub, [price("pr-1", 1999), price("pr-2", -5)])
        build_data_docs_index()
        path, _ = write_report(hub.backend)
        yield path


def test_report_renders_every_dataset_and_draws_its_charts(report: Path, hub: HubResource, watched: Watched):
    datasets = set(hub.read_frame("SELECT DISTINCT dataset FROM quality.validation_runs")["dataset"])
    assert datasets == {"products_suite", "prices_suite"}
    page = watched.page
    page.goto(report.as_uri())
    expect(page).to_have_title("Data-quality report")

    rows = page.locator("#datasets tbody tr")
    assert {rows.nth(i).get_attribute("data-dataset") for i in range(rows.count())} == datasets
    prices_row = page.locator('tr[data-dataset="prices_suite"]')
    expect(prices_row.locator(".status")).to_have_text("failed")
    expect(prices_row.locator("td.num")).to_have_text("3")
    expect(page.locator('tr[data-dataset="products_suite"] .status')).to_have_text("passed")

    # The charts draw: a visible line with one point per run, one bar per run, a sparkline per dataset.
    line = page.locator("#pass-rate-chart path.series")
    assert line.get_attribute("d").count("L") == 1
    assert line.bounding_box()["width"] > 100
    assert page.locator("#pass-rate-chart circle").count() == 2
    bars = page.locator("#quarantine-chart rect.bar")
    assert bars.count() == 2
    assert max(bars.nth(i).bounding_box()["height"] for i in range(2)) > 50
    assert page.locator("#datasets svg.sparkline path").count() == len(datasets)

    watched.screenshot("quality-report.png")
    assert watched.console_errors == [] and watched.page_errors == [] and watched.failed_requests == []
    assert watched.external_requests == [], "the report must be self-contained"

    # Each validation links its Data Docs page (four validations: two runs of two suites), which opens from the report.
    links = page.locator("#validations a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert len(links) == 4 and all((report.parent / link).is_file() for link in links)
    prices_row.locator("a", has_text="validation").click()
    page.wait_for_load_state("load")
    assert page.url.startswith(report.parent.as_uri() + "/gx/docs/validations/prices_suite/")
    expect(page.get_by_text("Status: Failed")).to_be_visible()
    assert_loaded_offline_without_errors(watched)


def test_data_docs_index_lists_every_validation_and_opens_them_offline(report: Path, watched: Watched):
    page = watched.page
    page.goto((report.parent / "gx" / "docs" / "index.html").as_uri())
    expect(page).to_have_title(f"Data Docs created by {GX_TITLE}")
    # The validation list is drawn by jQuery and bootstrap-table: one row per validation (two runs of two suites).
    rows = page.locator("table.ge-index-page-validation-results-table tbody tr.clickable-row")
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="prices_suite")).to_have_count(2)
    libraries = page.evaluate("() => [typeof $.fn.bootstrapTable, typeof vegaEmbed, typeof $.fn.datepicker]")
    assert libraries == ["function"] * 3
    assert page.locator("nav img[alt='Great Expectations']").evaluate("img => img.naturalWidth") > 0
    watched.screenshot("data-docs.png")
    assert_loaded_offline_without_errors(watched)

    failed = rows.filter(has_text="prices_suite").filter(has=page.locator(".ge-failed-icon, .text-danger")).first
    failed.click()
    page.wait_for_load_state("load")
    assert page.url.startswith(report.parent.as_uri() + "/gx/docs/validations/prices_suite/")
    expect(page.get_by_text("Status: Failed")).to_be_visible()
    # Bootstrap's stylesheet applies (the navbar is sticky) and Font Awesome draws its icons.
    assert page.locator("nav.sticky-top").evaluate("nav => getComputedStyle(nav).position") == "sticky"
    loaded_fonts = page.evaluate(
        "async () => (await document.fonts.ready, [...document.fonts].filter(f => f.status === 'loaded'))"
        ".map(f => f.family)"
    )
    assert any("Font Awesome 6 Free" in family for family in loaded_fonts), loaded_fonts
    watched.screenshot("data-docs-validation.png")
    assert_loaded_offline_without_errors(watched)

    page.emulate_media(color_scheme="dark")  # the dark theme has its own logo rule
    page.reload()
    expect(page.get_by_text("Status: Failed")).to_be_visible()
    assert_loaded_offline_without_errors(watched)


def assert_loaded_offline_without_errors(watched: Watched) -> None:
    """Nothing failed, nothing asked the internet, nothing logged an error (Data Docs use vendored copies)."""
    assert watched.external_requests == [], watched.external_requests
    assert watched.failed_requests == [], watched.failed_requests
    assert watched.console_errors == [], watched.console_errors
    assert watched.page_errors == [], watched.page_errors
