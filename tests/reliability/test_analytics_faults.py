"""The analytics report API under faults: complete and exact when it can be, a clear error when it cannot.

Analytics lands one daily partition at a time, so these run the resource's paged report directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from resources.analytics import AnalyticsResource
from resources.http import ExternalSystemError
from tests.conftest import Simulator

SURVIVED = {
    "429 Retry-After HTTP-date": {"status": 429, "retry_after": "0", "retry_after_form": "http-date", "every": 2},
    "5xx bursts": {"status": 503, "next": 3},
    "reset mid-body": {"kind": "reset", "every": 2},
    "truncated JSON": {"kind": "truncate", "every": 2},
    "empty page claiming more": {"kind": "empty_page", "every": 2},
    "slower than read timeout": {"kind": "delay", "delay_ms": 700, "next": 1},
}


def report(sim: Simulator, **overrides) -> list[tuple]:
    resource = AnalyticsResource(
        api_url=f"{sim.url}/analytics/v1",
        property_id="123456789",
        api_key="an_test_hub",
        page_size=200,
        backoff_initial_s=0.01,
        backoff_max_s=0.2,
        **overrides,
    )
    end = datetime.now(UTC).date() - timedelta(days=1)
    pages = resource.report_pages((end - timedelta(days=2)).isoformat(), end.isoformat())
    return [tuple(sorted(row.items())) for page in pages for row in page]


@pytest.mark.parametrize("fault", list(SURVIVED))
def test_a_report_under_a_fault_is_complete_and_exact(fault: str, sim: Simulator, matrix):
    clean = report(sim)
    assert len(clean) > 200  # more than one page
    sim.admin("POST", "faults", faults=[{**SURVIVED[fault], "path_prefix": "/analytics"}])
    assert report(sim, read_timeout_s=0.4) == clean
    assert sum(sim.admin("GET", "faults")["fired"].values()) >= 1
    matrix.proved(f"analytics: {fault}", "complete", records=len(clean))


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"kind": "empty_page", "every": 1}, ["analytics", "runReport", "ended at row 0", "3 attempt(s)"]),
        ({"kind": "expire_token", "every": 1}, ["analytics", "runReport", "HTTP 401"]),
        ({"status": 502, "every": 1}, ["analytics", "runReport", "HTTP 502", "3 attempt(s)"]),
    ],
)
def test_a_report_that_cannot_be_read_fails_clearly(rule: dict, words: list[str], sim: Simulator, matrix):
    sim.admin("POST", "faults", faults=[{**rule, "path_prefix": "/analytics"}])
    with pytest.raises(ExternalSystemError) as failure:
        report(sim, max_attempts=3)
    assert all(w in str(failure.value) for w in words), str(failure.value)
    assert "an_test_hub" not in str(failure.value)
    matrix.proved(f"analytics: {rule.get('kind', rule.get('status'))} for ever", "give-up", errors=1)
