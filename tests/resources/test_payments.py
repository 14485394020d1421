"""The Stripe resource against the simulator: complete paged exports, filters, retries and bad keys."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from resources.http import ExternalSystemError
from resources.payments import OBJECTS, StripeResource
from tests.conftest import Simulator, free_port

API_KEY = "sk_test_hub"
WRONG_KEY = "sk_test_wrong_key_91c4e7b2"
EXPIRED_KEY = "sk_test_expired_hub"


def payments_resource(simulator: Simulator, **overrides) -> StripeResource:
    settings = dict(api_url=f"{simulator.url}/payments", api_key=API_KEY, backoff_initial_s=0.01, backoff_max_s=0.2)
    return StripeResource(**{**settings, **overrides})


@pytest.fixture
def payments(simulator: Simulator) -> StripeResource:
    return payments_resource(simulator)


def export(resource: StripeResource, name: str, **kwargs) -> list[dict]:
    return [obj for page in resource.list_pages(name, **kwargs) for obj in page]


@pytest.mark.parametrize("name", OBJECTS)
def test_a_paged_export_has_every_object_once(simulator: Simulator, name: str):
    stats = simulator.stats()["payments"]
    expected = stats["events_listable"] if name == "events" else stats[name]
    pages = list(payments_resource(simulator, page_size=7).list_pages(name))
    ids = [obj["id"] for page in pages for obj in page]
    assert expected > 0 and len(ids) == expected and len(set(ids)) == expected
    assert all(1 <= len(page) <= 7 for page in pages)
    keys = [(obj["created"], obj["id"]) for page in pages for obj in page]
    assert keys == sorted(keys, reverse=True)  # newest first, ties by id


def test_created_gte_returns_exactly_the_newer_objects(payments: StripeResource):
    everything = export(payments, "charges")
    cut = sorted(c["created"] for c in everything)[len(everything) // 2]
    newer = export(payments, "charges", created_gte=datetime.fromtimestamp(cut, UTC))
    assert {c["id"] for c in newer} == {c["id"] for c in everything if c["created"] >= cut}
    assert export(payments, "charges", created_gte=cut) == newer
    with pytest.raises(ValueError, match="time zone"):
        list(payments.list_pages("charges", created_gte=datetime(2026, 1, 1)))


def test_objects_created_during_an_export_do_not_disturb_it(simulator: Simulator, payments: StripeResource):
    before = {c["id"] for c in export(payments, "charges")}
    pages = payments_resource(simulator, page_size=10).list_pages("charges")
    seen = [c["id"] for c in next(pages)]
    simulator.admin("POST", "churn", payments=15)
    seen += [c["id"] for page in pages for c in page]
    assert Counter(seen).most_common(1)[0][1] == 1
    assert set(seen) == before  # the new ones are newer than the cursor: the next run lands them
    assert len(export(payments, "charges")) == len(before) + 15


def test_rate_limits_are_retried(simulator: Simulator, payments: StripeResource):
    simulator.admin(
        "POST", "faults", faults=[{"status": 429, "next": 2, "retry_after": "0", "path_prefix": "/payments"}]
    )
    assert len(export(payments, "disputes")) == simulator.stats()["payments"]["disputes"]
    assert simulator.admin("GET", "faults")["faults"] == []


def test_a_wrong_key_names_the_setting_and_hides_the_key(simulator: Simulator):
    with pytest.raises(ExternalSystemError) as failure:
        list(payments_resource(simulator, api_key=WRONG_KEY).list_pages("charges"))
    message = str(failure.value)
    assert failure.value.status == 401
    assert "the API key was rejected" in message and "PAYMENTS_API_KEY" in message
    assert WRONG_KEY not in message and WRONG_KEY[-4:] not in message


def test_an_expired_key_says_so(simulator: Simulator):
    with pytest.raises(ExternalSystemError, match=r"the API key was expired \(api_key_expired\).*PAYMENTS_API_KEY"):
        list(payments_resource(simulator, api_key=EXPIRED_KEY).list_pages("refunds"))


def test_an_unreachable_api_names_the_url_setting(simulator: Simulator):
    nowhere = f"http://127.0.0.1:{free_port()}/payments"
    with pytest.raises(ExternalSystemError, match=r"GET /v1/charges failed after 2 attempt.*PAYMENTS_API_URL"):
        list(payments_resource(simulator, api_url=nowhere, max_attempts=2).list_pages("charges"))


def test_an_unknown_list_is_refused(payments: StripeResource):
    with pytest.raises(ValueError, match="unknown Stripe object list 'customers'"):
        list(payments.list_pages("customers"))


def test_get_one_object(payments: StripeResource):
    charge = export(payments, "charges")[0]
    assert payments.get("charges", charge["id"]) == charge
