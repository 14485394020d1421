"""CommerceToolsResource against the simulator over real HTTP."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from resources.commerce import CommerceToolsResource
from resources.http import ExternalSystemError
from tests.conftest import Simulator, commerce_resource


def _ids(pages) -> list[str]:
    return [record["id"] for page in pages for record in page]


def _answered(simulator: Simulator, status: int) -> int:
    return simulator.stats()["requests"]["by_status"].get(str(status), 0)


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


@pytest.mark.slow
def test_full_export_past_the_offset_limit_loses_and_repeats_nothing(simulator: Simulator):
    stats = simulator.reset(products=12_500)["commerce"]
    commerce = commerce_resource(simulator)
    pages = list(commerce.export_pages("product-projections"))
    ids = _ids(pages)
    assert stats["products"] == 12_500
    assert len(ids) == len(set(ids)) == 12_500
    assert len(pages) == 25 and all(len(page) <= 500 for page in pages)
    assert ids == sorted(ids)
    skus = {v["sku"] for p in (r for page in pages for r in page) for v in [p["masterVariant"], *p["variants"]]}
    assert len(skus) == stats["skus"]


def test_full_export_of_inventory_matches_the_simulator(simulator: Simulator, commerce: CommerceToolsResource):
    ids = _ids(commerce.export_pages("inventory"))
    assert len(ids) == len(set(ids)) == simulator.stats()["commerce"]["inventory_entries"]


def test_a_token_revoked_again_right_after_its_renewal_is_renewed_again(simulator: Simulator):
    """Several streams share one token: one renews it, another's request revokes it at once (here: the
    first four requests to the API revoke every token). The refused request is retried, not failed.

    Each failed attempt of a stream needs a revocation after its own renewal, so four revocations can
    fail at most four of its five attempts: the export must get through, whatever the interleaving.
    (With a revocation every third request, as before, a stream could lose all five: flaky.)"""
    commerce = commerce_resource(simulator, export_streams=3, max_attempts=5)
    simulator.admin("POST", "faults", faults=[{"kind": "expire_token", "next": 4, "path_prefix": "/commerce/"}])
    records = [r for page in commerce.export_bodies("inventory") for r in page.records()]
    assert len(records) == simulator.stats()["commerce"]["inventory_entries"]
    assert _answered(simulator, 401) >= 2  # a revoking token request answers 200; at most two of the four are


@pytest.mark.parametrize("streams", [1, 2, 3, 16])
def test_export_bodies_over_id_ranges_gives_every_record_once(simulator: Simulator, streams: int):
    commerce = commerce_resource(simulator, export_streams=streams)
    for resource in ("inventory", "product-projections", "channels"):
        pages = list(commerce.export_bodies(resource))
        records = [r for page in pages for r in page.records()]
        assert [page.count for page in pages] == [len(page.records()) for page in pages]
        assert sorted(r["id"] for r in records) == sorted(_ids(commerce.export_pages(resource)))
        assert len({r["id"] for r in records}) == len(records)


def test_export_pages_honours_an_extra_where_predicate(commerce: CommerceToolsResource):
    first = next(commerce.export_pages("product-projections"))
    wanted = [r["key"] for r in first[:3]]
    keys = ", ".join(f'"{k}"' for k in wanted)
    pages = commerce.export_pages("product-projections", where=[f"key in ({keys})"])
    found = [r["key"] for page in pages for r in page]
    assert sorted(found) == sorted(wanted)


def test_incremental_export_after_churn_returns_exactly_the_changed_records(
    simulator: Simulator, commerce: CommerceToolsResource
):
    records = [r for page in commerce.export_pages("product-projections") for r in page]
    watermark = max(_parse(r["lastModifiedAt"]) for r in records)
    entries = [r for page in commerce.export_pages("inventory") for r in page]
    inventory_watermark = max(_parse(r["lastModifiedAt"]) for r in entries)
    churned = simulator.admin("POST", "churn", products=25, inventory=40)
    changed = [r for page in commerce.changed_pages("product-projections", watermark + timedelta(milliseconds=1))
               for r in page]  # fmt: skip
    assert sorted(r["id"] for r in changed) == sorted(churned["products"])
    before = {r["id"]: r["version"] for r in records}
    assert all(r["version"] == before[r["id"]] + 1 for r in changed)
    inventory = _ids(commerce.changed_pages("inventory", inventory_watermark + timedelta(milliseconds=1)))
    assert sorted(inventory) == sorted(churned["inventory"])


def test_incremental_export_pages_through_a_millisecond_tie(simulator: Simulator):
    simulator.reset(products=1_500)
    commerce = commerce_resource(simulator, page_size=100)
    since = datetime.now().astimezone()
    churned = simulator.admin("POST", "churn", products=450, inventory=0)
    pages = list(commerce.changed_pages("product-projections", since - timedelta(seconds=1)))
    ids = _ids(pages)
    assert len({r["lastModifiedAt"] for page in pages for r in page}) == 1, "all churned records share one timestamp"
    assert len(pages) == 5
    assert len(ids) == len(set(ids)) == 450
    assert set(ids) == set(churned["products"])


def test_token_is_refreshed_after_it_expires(simulator: Simulator, commerce: CommerceToolsResource):
    simulator.admin("POST", "auth", token_ttl_seconds=1)
    issued = simulator.stats()["tokens_issued"]
    commerce.get("channels", next(commerce.export_pages("channels"))[0]["id"])
    time.sleep(1.3)
    assert len(_ids(commerce.export_pages("channels"))) == simulator.stats()["commerce"]["channels"]
    assert simulator.stats()["tokens_issued"] >= issued + 2


def test_a_revoked_token_is_refreshed_through_the_401_hook(simulator: Simulator, commerce: CommerceToolsResource):
    assert _ids(commerce.export_pages("channels"))
    issued, refused = simulator.stats()["tokens_issued"], _answered(simulator, 401)
    simulator.admin("POST", "auth", expire_tokens=True)
    assert len(_ids(commerce.export_pages("channels"))) == simulator.stats()["commerce"]["channels"]
    assert simulator.stats()["tokens_issued"] == issued + 1
    assert _answered(simulator, 401) == refused + 1


def test_injected_503s_are_retried(simulator: Simulator, commerce: CommerceToolsResource):
    before = _answered(simulator, 503)
    simulator.admin("POST", "faults", faults=[{"status": 503, "next": 2}])
    ids = _ids(commerce.export_pages("categories"))
    assert len(ids) == simulator.stats()["commerce"]["categories"]
    assert _answered(simulator, 503) == before + 2


def test_a_429_waits_as_long_as_retry_after_says(simulator: Simulator):
    commerce = commerce_resource(simulator, backoff_max_s=5)
    # The first export fetched the token, so the fault hits the API call.
    before = _answered(simulator, 429)
    simulator.admin("POST", "faults", faults=[{"status": 429, "next": 1, "retry_after": "1"}])
    started = time.monotonic()
    assert _ids(commerce.export_pages("channels"))
    assert time.monotonic() - started >= 0.9
    assert _answered(simulator, 429) == before + 1


def test_retries_give_up_with_the_system_endpoint_status_and_attempts(simulator: Simulator):
    commerce = commerce_resource(simulator, max_attempts=3)
    simulator.admin("POST", "faults", faults=[{"status": 502, "next": 50}])
    with pytest.raises(ExternalSystemError) as failure:
        list(commerce.export_pages("channels"))
    message = str(failure.value)
    assert message.startswith("commerce: POST /oauth/token failed after 3 attempt(s), HTTP 502")
    assert failure.value.attempts == 3
