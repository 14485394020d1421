"""Bad settings fail with one clear error that names the setting and never shows the secret."""

from pathlib import Path

import dagster as dg
import pytest

from assets.commerce import raw_commerce_channels
from resources.http import ExternalSystemError
from resources.hub import HubError, HubResource
from tests.conftest import CLIENT_SECRET, Simulator, commerce_resource, free_port

WRONG_SECRET = "wrong-secret-3b9d1c"


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    error, messages = failures[0].step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def materialize_channels(commerce, hub: HubResource) -> dg.ExecuteInProcessResult:
    return dg.materialize([raw_commerce_channels], resources={"commerce": commerce, "hub": hub}, raise_on_error=False)


def test_a_wrong_client_secret(simulator: Simulator, hub: HubResource):
    result = materialize_channels(commerce_resource(simulator, client_secret=WRONG_SECRET), hub)
    message = failure_message(result)
    assert "the client id or secret was rejected (invalid_client)" in message
    assert "COMMERCE_CLIENT_SECRET" in message
    every_event = " ".join(str(e) for e in result.all_events)
    assert WRONG_SECRET not in every_event and CLIENT_SECRET not in every_event


def test_an_unreachable_api_after_the_retries(simulator: Simulator, hub: HubResource):
    nowhere = f"http://127.0.0.1:{free_port()}/commerce"
    commerce = commerce_resource(simulator, api_url=nowhere, auth_url=nowhere, max_attempts=3)
    with pytest.raises(ExternalSystemError) as failure:
        list(commerce.export_pages("channels"))
    assert failure.value.attempts == 3
    assert str(failure.value) == (
        f"commerce: POST /oauth/token failed after 3 attempt(s), no response: ConnectionError: cannot reach "
        f"{nowhere} (check COMMERCE_AUTH_URL)"
    )
    assert "COMMERCE_AUTH_URL" in failure_message(materialize_channels(commerce, hub))


def test_an_unreachable_api_behind_a_working_token_endpoint(simulator: Simulator):
    nowhere = f"http://127.0.0.1:{free_port()}/commerce"
    commerce = commerce_resource(simulator, api_url=nowhere, max_attempts=2)
    with pytest.raises(ExternalSystemError, match=r"GET /beauty-hub/channels failed after 2 attempt.*COMMERCE_API_URL"):
        list(commerce.export_pages("channels"))


def test_an_unknown_project_key(simulator: Simulator, hub: HubResource):
    commerce = commerce_resource(simulator, project_key="no-such-project")
    message = failure_message(materialize_channels(commerce, hub))
    assert "invalid_scope" in message and "COMMERCE_PROJECT_KEY" in message


def test_an_unknown_project_key_with_a_valid_scope(simulator: Simulator):
    commerce = commerce_resource(simulator, project_key="no-such-project", scopes="manage_project:beauty-hub")
    with pytest.raises(ExternalSystemError, match=r"project 'no-such-project' .* not found .*COMMERCE_PROJECT_KEY"):
        list(commerce.export_pages("channels"))


def test_an_unwritable_hub_path(simulator: Simulator, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    hub = HubResource(url=f"duckdb:///{blocker}/hub.duckdb")
    message = failure_message(materialize_channels(commerce_resource(simulator), hub))
    assert f"cannot open the DuckDB hub at {blocker}/hub.duckdb (HUB_URL)" in message
    with pytest.raises(HubError):
        hub.sync_state("x")
