"""Secrets never leak: a sync with distinctive secret values, then a scan of everything a user or operator can
see (captured logs and output, the Dagster event log with every event's message and metadata, exception
messages, the quality report) finds none of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy.engine

from assets.commerce import raw_commerce_channels
from assets.orders import orders_assets
from resources.hub import HubResource
from resources.pii import PiiHashResource
from tests.conftest import CLIENT_SECRET, Simulator, commerce_resource, postgres_database
from tests.reliability.harness import SYNC_ASSETS, resources

PII_SALT = "pii-salt-S3CR3T-5e1f"
PG_PASSWORD = "pg-pass-S3CR3T-8a2d"
WRONG_KEY = "sk_live_S3CR3T_wrong_4c7"


def everything_in_the_event_log(instance: dg.DagsterInstance, run_id: str) -> str:
    parts = []
    for entry in instance.all_logs(run_id):
        parts += [entry.user_message or "", str(entry.dagster_event) if entry.dagster_event else ""]
        event = entry.dagster_event
        if event and event.is_step_materialization:
            parts.append(repr(event.step_materialization_data.materialization.metadata))
        if event and event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                parts += [error.message, "".join(error.stack)]
                error = error.cause
    return "\n".join(parts)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_no_secret_reaches_logs_events_errors_or_the_report(
    backend: str, sim: Simulator, tmp_path: Path, capfd, caplog, monkeypatch, matrix
):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path / "quality"))
    secrets = [CLIENT_SECRET, "sk_test_hub", "wh_test_hub", PII_SALT, WRONG_KEY]
    with _hub(backend, tmp_path) as (hub, url_secret):
        if url_secret:
            secrets.append(url_secret)
        texts = []
        with dg.instance_for_test() as instance:
            ok = dg.materialize(
                [*SYNC_ASSETS, *orders_assets],
                resources={**resources(sim, hub), "pii": PiiHashResource(salt=PII_SALT)},
                instance=instance,
            )
            texts.append(everything_in_the_event_log(instance, ok.run_id))
            failing = dg.materialize(  # a run that fails for a bad secret: its error must not show it either
                [raw_commerce_channels],
                resources={"hub": hub, "commerce": commerce_resource(sim, client_secret=WRONG_KEY, max_attempts=1)},
                instance=instance,
                raise_on_error=False,
            )
            assert not failing.success
            texts.append(everything_in_the_event_log(instance, failing.run_id))
        try:
            HubResource(url=hub.url.replace("/hub_test_", "/missing_hub_test_")).sync_state("x")
        except Exception as exc:
            texts.append(f"{exc!r} {exc}")
        texts.append(_report(hub, tmp_path))
    out, err = capfd.readouterr()
    texts += [out, err, caplog.text]
    everything = "\n".join(texts)
    assert "failed" in everything  # the scan really saw the failing run
    leaked = [f"{secret[:4]}..." for secret in secrets if secret in everything]  # never print a whole secret
    assert not leaked, f"secrets leaked: {leaked}"
    matrix.proved(f"secrets ({backend})", "secrets", secrets=len(secrets), chars=len(everything))


class _hub:
    """A hub whose URL carries a password (Postgres), or a DuckDB file."""

    def __init__(self, backend: str, tmp_path: Path):
        self.backend, self.tmp_path, self._database = backend, tmp_path, None

    def __enter__(self) -> tuple[HubResource, str | None]:
        if self.backend == "duckdb":
            return HubResource(url=f"duckdb:///{self.tmp_path / 'hub.duckdb'}"), None
        self._database = postgres_database()
        url = sqlalchemy.engine.make_url(self._database.__enter__()).set(password=PG_PASSWORD)
        return HubResource(url=url.render_as_string(hide_password=False)), PG_PASSWORD

    def __exit__(self, *exc) -> None:
        if self._database is not None:
            self._database.__exit__(*exc)


def _report(hub: HubResource, tmp_path: Path) -> str:
    if importlib.util.find_spec("quality.report") is None:
        pytest.skip("quality/report.py (the quality report) does not exist yet: the report part is not scanned")
    from quality.report import write_report

    path, _ = write_report(hub.backend, tmp_path / "quality")
    return path.read_text(encoding="utf-8")
