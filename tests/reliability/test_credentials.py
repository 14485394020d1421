"""The simulators reject missing, wrong and expired credentials, on every system."""

from __future__ import annotations

import pytest
import requests

from simulators.payments import EXPIRED_API_KEY
from tests.conftest import CLIENT_ID, CLIENT_SECRET, PROJECT_KEY, Simulator

BODY = {"dateRanges": [{"startDate": "2026-01-01", "endDate": "2026-01-01"}], "dimensions": [{"name": "date"}]}


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


# (system, which credential, how to get it, the good one for contrast)
CASES = {
    ("commerce", "missing"): lambda s: None,
    ("commerce", "wrong"): lambda s: "not-a-token",
    ("commerce", "expired"): expired_commerce_token,
    ("commerce token", "missing"): lambda s: None,
    ("commerce token", "wrong"): lambda s: "wrong-client-secret",
    ("payments", "missing"): lambda s: None,
    ("payments", "wrong"): lambda s: "sk_test_wrong",
    ("payments", "expired"): lambda s: EXPIRED_API_KEY,
    ("warehouse", "missing"): lambda s: None,
    ("warehouse", "wrong"): lambda s: "wh_wrong",
    ("analytics", "missing"): lambda s: None,
    ("analytics", "wrong"): lambda s: "an_wrong",
}
GOOD = {
    "commerce": commerce_token,
    "commerce token": lambda s: CLIENT_SECRET,
    "payments": lambda s: "sk_test_hub",
    "warehouse": lambda s: "wh_test_hub",
    "analytics": lambda s: "an_test_hub",
}


@pytest.mark.parametrize(("system", "kind"), list(CASES))
def test_the_simulator_rejects_a_bad_credential(system: str, kind: str, simulator: Simulator, matrix):
    assert call(simulator, system, GOOD[system](simulator)).status_code == 200
    answer = call(simulator, system, CASES[(system, kind)](simulator))
    assert answer.status_code == 401, answer.text
    if (system, kind) == ("payments", "expired"):
        assert answer.json()["error"]["code"] == "api_key_expired"
    matrix.proved(f"{kind} credential", "credentials", systems=1)
