"""The simulators reject missing, wrong and expired credentials on every system, and the clients either
fail naming the system and the setting to fix (never the secret) or, for an OAuth token, refresh once and go on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from resources.analytics import AnalyticsResource
from resources.http import ExternalSystemError
from resources.payments import StripeResource
from resources.warehouse import WarehouseResource
from simulators.analytics import EXPIRED_ACCESS_TOKEN
from simulators.payments import EXPIRED_API_KEY
from simulators.warehouse import EXPIRED_API_KEY as EXPIRED_WAREHOUSE_KEY
from tests.conftest import CLIENT_ID, CLIENT_SECRET, PROJECT_KEY, Simulator, commerce_resource

BODY = {"dateRanges": [{"startDate": "2026-01-01", "endDate": "2026-01-01"}], "dimensions": [{"name": "date"}]}
GOOD_KEYS = {"payments": "sk_test_hub", "warehouse": "wh_test_hub", "analytics": "an_test_hub"}


def commerce_token(sim: Simulator) -> str:
    answer = requests.post(
        f"{sim.commerce_url}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": f"manage_project:{PROJECT_KEY}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def expired_commerce_token(sim: Simulator) -> str:
    token = commerce_token(sim)
    sim.admin("POST", "auth", expire_tokens=True)
    return token


def call(sim: Simulator, system: str, credential: str | None) -> requests.Response:
    if system == "commerce":
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return requests.get(f"{sim.commerce_url}/{PROJECT_KEY}/channels", headers=headers, timeout=10)
    if system == "commerce token":
        auth = (CLIENT_ID, credential) if credential else None
        data = {"grant_type": "client_credentials", "scope": f"manage_project:{PROJECT_KEY}"}
        return requests.post(f"{sim.commerce_url}/oauth/token", auth=auth, data=data, timeout=10)
    if system == "payments":
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return requests.get(f"{sim.url}/payments/v1/charges", headers=headers, timeout=10)
    if system == "warehouse":
        headers = {"X-Api-Key": credential} if credential else {}
        return requests.get(f"{sim.url}/warehouse/v1/suppliers", headers=headers, timeout=10)
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return requests.post(
        f"{sim.url}/analytics/v1/properties/123456789:runReport", json=BODY, headers=headers, timeout=10
    )


def refusal(system: str, answer: requests.Response) -> str | None:
    """What the system's error body says went wrong: its error code, or Google's ErrorInfo reason."""
    error = answer.json().get("error")
    if system.startswith("commerce"):
        return answer.json()["errors"][0]["code"]
    if system == "analytics":
        reasons = [d["reason"] for d in error.get("details", []) if d["@type"].endswith("google.rpc.ErrorInfo")]
        return reasons[0] if reasons else error["status"]
    return error.get("code") or error.get("type")


# (system, which credential) -> (how to get it, the refusal the system answers with)
CASES: dict[tuple[str, str], tuple[Callable[[Simulator], str | None], str]] = {
    ("commerce", "missing"): (lambda s: None, "invalid_token"),
    ("commerce", "wrong"): (lambda s: "not-a-token", "invalid_token"),
    ("commerce", "expired"): (expired_commerce_token, "invalid_token"),
    ("commerce token", "missing"): (lambda s: None, "invalid_client"),
    ("commerce token", "wrong"): (lambda s: "wrong-client-secret", "invalid_client"),
    ("payments", "missing"): (lambda s: None, "invalid_request_error"),
    ("payments", "wrong"): (lambda s: "sk_test_wrong_7c1e", "invalid_request_error"),
    ("payments", "expired"): (lambda s: EXPIRED_API_KEY, "api_key_expired"),
    ("warehouse", "missing"): (lambda s: None, "unauthorized"),
    ("warehouse", "wrong"): (lambda s: "wh_wrong_4f2a", "unauthorized"),
    ("warehouse", "expired"): (lambda s: EXPIRED_WAREHOUSE_KEY, "api_key_expired"),
    ("analytics", "missing"): (lambda s: None, "CREDENTIALS_MISSING"),
    ("analytics", "wrong"): (lambda s: "an_wrong_9b3d", "UNAUTHENTICATED"),
    ("analytics", "expired"): (lambda s: EXPIRED_ACCESS_TOKEN, "ACCESS_TOKEN_EXPIRED"),
}
GOOD = {
    "commerce": commerce_token,
    "commerce token": lambda s: CLIENT_SECRET,
    **{system: (lambda s, key=key: key) for system, key in GOOD_KEYS.items()},
}


@pytest.mark.parametrize(("system", "kind"), list(CASES))
def test_the_simulator_rejects_a_bad_credential(system: str, kind: str, simulator: Simulator, matrix):
    assert call(simulator, system, GOOD[system](simulator)).status_code == 200
    credential, expected = CASES[(system, kind)][0](simulator), CASES[(system, kind)][1]
    answer = call(simulator, system, credential)
    assert answer.status_code == 401, answer.text
    assert refusal(system, answer) == expected, answer.text
    if credential:
        assert credential not in answer.text
    matrix.proved(f"{kind} credential", "credentials", systems=1)


def test_every_system_knows_missing_wrong_and_expired_credentials():
    """The API systems each have all three cases above (the token endpoint's secret does not expire)."""
    for system in ("commerce", "payments", "warehouse", "analytics"):
        assert {kind for s, kind in CASES if s == system} == {"missing", "wrong", "expired"}, system


# -- the clients ------------------------------------------------------------------------------------

YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def read_with(sim: Simulator, system: str, credential: str) -> int:
    """Read one listing of `system` with `credential` through its client resource; the records read."""
    if system == "commerce":
        pages = commerce_resource(sim, client_secret=credential, max_attempts=2).export_pages("channels")
    elif system == "payments":
        pages = StripeResource(api_url=f"{sim.url}/payments", api_key=credential, max_attempts=2).list_pages("charges")
    elif system == "warehouse":
        pages = WarehouseResource(api_url=f"{sim.url}/warehouse", api_key=credential, max_attempts=2).pages(
            "warehouses"
        )
    else:
        analytics = AnalyticsResource(
            api_url=f"{sim.url}/analytics/v1", property_id="123456789", api_key=credential, max_attempts=2
        )
        pages = analytics.report_pages(YESTERDAY, YESTERDAY)
    return sum(len(page) for page in pages)


# (system, which credential) -> (the credential, what the error must say, the setting it must name)
CLIENT_CASES = {
    ("commerce", "missing"): ("", "rejected (invalid_client)", "COMMERCE_CLIENT_SECRET"),
    ("commerce", "wrong"): ("wrong-client-secret-5e8f", "rejected (invalid_client)", "COMMERCE_CLIENT_SECRET"),
    ("payments", "missing"): ("", "the API key was rejected", "PAYMENTS_API_KEY"),
    ("payments", "wrong"): ("sk_test_wrong_7c1e", "the API key was rejected", "PAYMENTS_API_KEY"),
    ("payments", "expired"): (EXPIRED_API_KEY, "the API key was expired (api_key_expired)", "PAYMENTS_API_KEY"),
    ("warehouse", "missing"): ("", "the API key was rejected (unauthorized)", "WAREHOUSE_API_KEY"),
    ("warehouse", "wrong"): ("wh_wrong_4f2a", "the API key was rejected (unauthorized)", "WAREHOUSE_API_KEY"),
    ("warehouse", "expired"): (
        EXPIRED_WAREHOUSE_KEY,
        "the API key has expired (api_key_expired)",
        "WAREHOUSE_API_KEY",
    ),
    ("analytics", "missing"): ("", "no API key was sent (CREDENTIALS_MISSING)", "ANALYTICS_API_KEY"),
    ("analytics", "wrong"): ("an_wrong_9b3d", "the API key was refused (UNAUTHENTICATED)", "ANALYTICS_API_KEY"),
    ("analytics", "expired"): (
        EXPIRED_ACCESS_TOKEN,
        "the API key has expired (ACCESS_TOKEN_EXPIRED)",
        "ANALYTICS_API_KEY",
    ),
}


@pytest.mark.parametrize(("system", "kind"), list(CLIENT_CASES))
def test_the_client_fails_naming_the_system_and_setting(system: str, kind: str, simulator: Simulator, matrix):
    credential, words, setting = CLIENT_CASES[(system, kind)]
    with pytest.raises(ExternalSystemError) as failure:
        read_with(simulator, system, credential)
    message = str(failure.value)
    assert message.startswith(f"{system}: ") and "HTTP 401" in message, message
    assert words in message and "(check " in message and setting in message, message
    for secret in (credential, CLIENT_SECRET, *GOOD_KEYS.values()):
        assert not secret or secret not in message
    matrix.proved(f"client: {kind} credential", "credentials", systems=1)


def test_the_commerce_client_refreshes_an_expired_token_once_and_goes_on(simulator: Simulator, matrix):
    commerce = commerce_resource(simulator)
    channels = simulator.stats()["commerce"]["channels"]
    assert sum(len(p) for p in commerce.export_pages("channels")) == channels
    issued, refused = simulator.stats()["tokens_issued"], simulator.stats()["requests"]["by_status"].get("401", 0)
    simulator.admin("POST", "auth", expire_tokens=True)
    assert sum(len(p) for p in commerce.export_pages("channels")) == channels
    assert simulator.stats()["tokens_issued"] == issued + 1
    assert simulator.stats()["requests"]["by_status"].get("401", 0) == refused + 1
    matrix.proved("client: expired credential", "credentials", systems=1)


# an `expire_token` fault: the credential in use expires mid-export
EXPIRY_FAULT = {
    "payments": ("api_key_expired", "the API key was expired (api_key_expired)"),
    "warehouse": ("api_key_expired", "the API key has expired (api_key_expired)"),
    "analytics": ("ACCESS_TOKEN_EXPIRED", "the API key has expired (ACCESS_TOKEN_EXPIRED)"),
}


@pytest.mark.parametrize("system", list(EXPIRY_FAULT))
def test_a_key_expiring_mid_export_is_answered_and_reported_as_expired(system: str, simulator: Simulator, matrix):
    reason, words = EXPIRY_FAULT[system]
    simulator.admin("POST", "faults", faults=[{"kind": "expire_token", "next": 1, "path_prefix": f"/{system}"}])
    answer = call(simulator, system, GOOD_KEYS[system])
    assert answer.status_code == 401 and refusal(system, answer) == reason, answer.text
    simulator.admin("POST", "faults", faults=[{"kind": "expire_token", "every": 1, "path_prefix": f"/{system}"}])
    with pytest.raises(ExternalSystemError) as failure:
        read_with(simulator, system, GOOD_KEYS[system])
    assert words in str(failure.value) and GOOD_KEYS[system] not in str(failure.value)
    matrix.proved("expire_token", "credentials", systems=1)
