"""The data-quality report: built from the hub's quality tables, valid HTML5, one row per dataset, right counts."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import html5lib
import pytest

from pipelines.sensors.quality_report import quality_report_job, quality_report_sensors
from quality.history import VALIDATION_RUNS
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from quality.report import quality_report, read_summary, render_html, write_report
from resources.hub import HubResource, TableSpec

PRODUCTS = TableSpec("core.products", (("product_id", "text"), ("name", "text")), ("product_id",))

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
# (run, dataset, table, expectation -> success, validated_at); each run writes one row per expectation.
VALIDATIONS = [
    ("run-a", "products_suite", "core.products", {"not_null(sku)": True, "unique(product_id)": True}, T0),
    ("run-a", "supplier_offers_suite", "core.supplier_offers", {"between(price)": True, "not_null(sku)": True}, T0),
    ("run-b", "products_suite", "core.products", {"not_null(sku)": True, "unique(product_id)": True}, T1),
    ("run-b", "supplier_offers_suite", "core.supplier_offers", {"between(price)": False, "not_null(sku)": True}, T1),
    ("run-b", "prices_suite", "core.prices", {"in_set(currency)": True}, T1),
]
# Quarantined rows per table, and when: 2 offers before run-a, 3 offers and 1 order between run-a and run-b.
QUARANTINED = [
    ("core.supplier_offers", "feed-1.csv", 2, T0 - timedelta(minutes=5)),
    ("core.supplier_offers", "feed-2.csv", 3, T1 - timedelta(minutes=5)),
    ("core.order_lines", "orders-api", 1, T1 - timedelta(minutes=5)),
]


def docs_path(run: str, dataset: str) -> str:
    return f"gx/docs/validations/{dataset}/{run}.html"


def fill_hub(hub: HubResource) -> None:
    """Validation history, quarantine and one load of core.products, as the pipeline would leave them."""
    rows = [
        dict(
            run_id=run,
            dataset=dataset,
            table_name=table,
            batch_id=1,
            expectation=label,
            column_name=label.split("(")[1].rstrip(")"),
            success=ok,
            observed_value="null",
            unexpected_count=0 if ok else 7,
            element_count=100,
            validated_at=at,
            data_docs_path=docs_path(run, dataset),
        )
        for run, dataset, table, expectations, at in VALIDATIONS
        for label, ok in expectations.items()
    ]
    with hub.load("test:validation_runs") as load:
        load.stage(VALIDATION_RUNS).append(
            VALIDATION_RUNS.to_arrow({c: [r[c] for r in rows] for c in VALIDATION_RUNS.column_names})
        )
    for dataset, source, count, at in QUARANTINED:
        bad = [Quarantined(line=i + 2, reason="price below zero", record={"line": i}) for i in range(count)]
        with hub.load(f"test:quarantine:{source}") as load:
            load.stage(QUARANTINE).append(quarantine_rows(dataset, source, "2026-11-20", bad, at=at))
    with hub.load("test:products") as load:
        load.stage(PRODUCTS).append(PRODUCTS.to_arrow({"product_id": ["p1"], "name": ["Lipstick"]}))


class Page(HTMLParser):
    """The few things the tests read from the page: table rows, cells, links and chart shapes by section."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.links: list[str] = []
        self.shapes: dict[str, list[dict[str, str | None]]] = {}
        self._figure: str | None = None
        self._row: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure":
            self._figure = a.get("id")
        elif tag in ("path", "rect", "circle") and self._figure:
            self.shapes.setdefault(self._figure, []).append({"tag": tag, **a})
        elif tag == "tr" and a.get("data-dataset"):
            self._row = a["data-dataset"]
            self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell = []
        elif tag == "a":
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag == "td" and self._row and self._cell is not None:
            self.rows[self._row].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def assert_valid_html5(text: str) -> None:
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any parse error


COLUMNS = ["dataset", "status", "trend", "quarantined", "last load", "last validated", "docs"]


def test_report_has_one_row_per_dataset_with_the_counts_of_the_hub(each_hub: HubResource, tmp_path: Path):
    fill_hub(each_hub)
    pruned = (VALIDATIONS[0][0], VALIDATIONS[0][1])  # its Data Docs page is gone (QUALITY_DOCS_KEEP)
    for run, dataset, *_ in VALIDATIONS:
        if (run, dataset) != pruned:
            page = tmp_path / "quality" / docs_path(run, dataset)
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text("<html></html>")
    path, summary = write_report(each_hub.backend, tmp_path / "quality")
    text = path.read_text()
    assert path == tmp_path / "quality" / "index.html"
    assert_valid_html5(text)
    page = Page(text)
    rows = {name: dict(zip(COLUMNS, cells, strict=True)) for name, cells in page.rows.items()}

    # One row per validated dataset, plus the table whose rows wait in quarantine without any check.
    assert set(rows) == {"products_suite", "supplier_offers_suite", "prices_suite", "core.order_lines"}
    assert rows["supplier_offers_suite"]["status"] == "failed 1/2 between(price) (7 rows)"
    assert rows["products_suite"]["status"] == "passed 2/2"
    assert rows["prices_suite"]["status"] == "passed 1/1"
    assert rows["core.order_lines"]["status"] == "not validated"
    assert rows["prices_suite"]["dataset"] == "prices_suite core.prices"
    assert {name: r["quarantined"] for name, r in rows.items()} == {
        "supplier_offers_suite": "5",
        "core.order_lines": "1",
        "products_suite": "0",
        "prices_suite": "0",
    }
    # Freshness comes from ops.batches: core.products was loaded, the others never were.
    assert rows["products_suite"]["last load"].endswith("ago")
    assert rows["prices_suite"]["last load"] == "never"
    # Failing datasets come first.
    assert next(iter(rows)) == "supplier_offers_suite"

    # Every validation links to its Data Docs page while it is there, and the header to the Data Docs index.
    expected_links = {docs_path(run, dataset) for run, dataset, *_ in VALIDATIONS} - {docs_path(*pruned)}
    assert expected_links <= set(page.links)
    assert docs_path(*pruned) not in page.links
    assert "gx/docs/index.html" in page.links

    # Charts: one point per run for the pass rate (run-a 4/4, run-b 4/5), one bar per run for quarantine.
    assert [(r.run_id, r.passed, r.expectations, r.quarantined) for r in summary.runs] == [
        ("run-a", 4, 4, 2),
        ("run-b", 4, 5, 4),
    ]
    line = [s for s in page.shapes["pass-rate-chart"] if s.get("class") == "series"]
    assert len(line) == 1 and line[0]["d"].count("L") == 1
    assert len([s for s in page.shapes["pass-rate-chart"] if s["tag"] == "circle"]) == 2
    bars = [s for s in page.shapes["quarantine-chart"] if s["tag"] == "rect"]
    assert len(bars) == 2
    assert float(bars[1]["height"]) == pytest.approx(2 * float(bars[0]["height"]))


def test_report_of_an_empty_hub_says_so(hub: HubResource, tmp_path: Path):
    path, summary = write_report(hub.backend, tmp_path)
    text = path.read_text()
    assert_valid_html5(text)
    assert summary.datasets == () and summary.runs == ()
    assert "No validation runs yet" in text
    assert Page(text).rows == {}


def test_report_escapes_what_it_shows(hub: HubResource, tmp_path: Path):
    fill_hub(hub)
    summary = read_summary(hub.backend)
    hostile = summary.datasets[0].__class__(**{**summary.datasets[0].__dict__, "dataset": "<script>x</script>"})
    text = render_html(summary.__class__(**{**summary.__dict__, "datasets": (hostile,)}))
    assert_valid_html5(text)
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text


def test_report_asset_writes_the_page_and_links_it(hub: HubResource, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path / "quality"))
    fill_hub(hub)
    result = dg.materialize([quality_report], resources={"hub": hub})
    metadata = result.asset_materializations_for_node("quality__report")[0].metadata
    assert metadata["path"].value == str((tmp_path / "quality" / "index.html").resolve())
    assert metadata["datasets"].value == 4
    assert metadata["datasets_failing"].value == 1
    assert metadata["rows_in_quarantine"].value == 6
    assert (tmp_path / "quality" / "index.html").exists()


def test_cli_rebuilds_the_report_and_prints_its_path(hub: HubResource, hub_path: Path, tmp_path: Path):
    fill_hub(hub)
    env = {**os.environ, "HUB_URL": f"duckdb:///{hub_path}", "QUALITY_DIR": str(tmp_path / "q")}
    out = subprocess.run(
        [sys.executable, "-m", "quality.report"], env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    report = (tmp_path / "q" / "index.html").resolve()
    assert out.strip() == f"Data-quality report (4 datasets): {report}"
    assert report.exists()


def test_sensors_request_one_report_per_finished_run_that_checked_something(hub: HubResource, tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))

    @dg.asset
    def checked() -> None:
        return None

    @dg.asset_check(asset=checked, blocking=True)
    def planted(context) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=not context.run.tags.get("fail"))

    @dg.asset
    def unchecked() -> None:
        return None

    defs = dg.Definitions(
        assets=[checked, unchecked, quality_report],
        asset_checks=[planted],
        jobs=[
            dg.define_asset_job("checked_job", selection=[checked]),
            dg.define_asset_job("unchecked_job", selection=[unchecked]),
            quality_report_job,
        ],
        resources={"hub": hub},
    )
    after_success, after_failure = quality_report_sensors
    with dg.instance_for_test() as instance:

        def run(job: str, **kwargs) -> dg.ExecuteInProcessResult:
            return defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, **kwargs)

        def evaluate(sensor, result: dg.ExecuteInProcessResult):
            event = result.get_run_success_event() if result.success else result.get_run_failure_event()
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name, dagster_instance=instance, dagster_run=result.dagster_run, dagster_event=event
            )
            return sensor(context)

        passed, failed = run("checked_job"), run("checked_job", tags={"fail": "1"})
        assert passed.success and not failed.success
        for sensor, result in ((after_success, passed), (after_failure, failed)):
            request = evaluate(sensor, result)
            assert isinstance(request, dg.RunRequest) and request.run_key == result.run_id
        assert isinstance(evaluate(after_success, run("unchecked_job")), dg.SkipReason)
        assert isinstance(evaluate(after_success, run("quality_report_job")), dg.SkipReason)
    assert after_success.job_name == after_failure.job_name == quality_report_job.name


def test_cli_names_a_setting_it_cannot_use_in_one_line(hub: HubResource, hub_path: Path, tmp_path: Path):
    fill_hub(hub)
    (tmp_path / "q" / "gx").mkdir(parents=True)  # a GX project, so its Data Docs are pruned and rebuilt
    env = {**os.environ, "HUB_URL": f"duckdb:///{hub_path}", "QUALITY_DIR": str(tmp_path / "q")}
    env["QUALITY_DOCS_KEEP"] = "0"
    command = [sys.executable, "-m", "quality.report"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line == (
        "quality report not rebuilt: "
        "QUALITY_DOCS_KEEP='0': expected a whole number of validations per suite, at least 1"
    )
