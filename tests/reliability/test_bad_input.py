"""Bad settings, source records and files: each fails with one clear error that names the field or setting
(never a secret), or lands in quarantine with a reason."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from assets.commerce import RAW_CHANNELS, raw_commerce_channels
from assets.landing import COMMERCETOOLS, RecordShape, land_pages
from assets.payments import RAW_CHARGES, STRIPE
from assets.warehouse import load_supplier_file
from quality.quarantine import QUARANTINE
from resources.commerce import format_timestamp
from resources.http import ExternalSystemError
from resources.hub import HubError, HubResource, TableSpec
from resources.payments import StripeResource
from resources.warehouse import WarehouseResource
from simulators.__main__ import load_faults
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


# --- the bad-input table ----------------------------------------------------------------------------
# Every case ends in one of: a clear error naming the field or setting (never a secret), a quarantine
# row with a reason, or (for input the pipeline is meant to absorb) a documented clean outcome.


@dataclass(frozen=True)
class Outcome:
    kind: str  # "error", "quarantine" or "lands"
    text: str  # the error message, or the quarantine reasons joined


def error_of(call: Callable[[], object]) -> Outcome:
    try:
        call()
    except Exception as exc:  # the point: which message reaches the user
        return Outcome("error", f"{type(exc).__name__}: {exc}")
    return Outcome("lands", "")


def landed(hub: HubResource, records: list, shape: RecordShape = COMMERCETOOLS) -> Outcome:
    """Land `records` as one page of raw.commerce_channels; the quarantine reasons, or what landed."""
    spec = RAW_CHANNELS if shape is COMMERCETOOLS else RAW_CHARGES
    land_pages(dg.build_asset_context(), hub, spec, [records], source="bad-input", shape=shape)
    reasons = (
        hub.read_frame("SELECT reason FROM quality.quarantine") if hub.backend.table_exists(QUARANTINE.name) else None
    )
    if reasons is not None and len(reasons):
        return Outcome("quarantine", " | ".join(reasons["reason"]))
    frame = hub.read_frame(f"SELECT id, version FROM {spec.name}")
    return Outcome("lands", ",".join(f"{i}@{v}" for i, v in zip(frame["id"], frame["version"], strict=True)))


def channel(**fields) -> dict:
    return {"id": "ch-1", "version": 1, "lastModifiedAt": "2026-01-01T00:00:00.000Z", "key": "c1", **fields}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def supplier_file(tmp_path: Path, hub: HubResource, body: bytes, name: str = "suppliers_2026-01-02.csv") -> Outcome:
    path = tmp_path / name
    path.write_bytes(body)
    result = load_supplier_file(path, hub)
    if result.error:
        return Outcome("error", result.error)
    if result.rows_quarantined:
        reasons = hub.read_frame("SELECT reason FROM quality.quarantine")["reason"]
        return Outcome("quarantine", " | ".join(reasons))
    return Outcome("lands", f"{result.rows_loaded} rows")


HEADER = b"supplier_id,supplier_sku,sku,unit_cost,currency,min_order_qty,available_to_promise\n"
GOOD_ROW = b"SUP-1,S-1,SKU-1,4.50,EUR,6,100\n"


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    """A loopback HTTP server answering every GET with `body` (for bodies no simulator would send)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def http_body(body: bytes) -> Outcome:
    with serving(body) as url:
        payments = StripeResource(api_url=url, api_key="sk_test_hub", max_attempts=2, backoff_initial_s=0.01)
        return error_of(lambda: list(payments.list_pages("charges")))


def faults_file(tmp_path: Path, text: str) -> Outcome:
    path = tmp_path / "faults.json"
    path.write_text(text)
    return error_of(lambda: load_faults(str(path)))


# case -> (how to produce the outcome, expected kind, words the message must carry)
Case = Callable[[Simulator, HubResource, Path], Outcome]
CASES: dict[str, tuple[Case, str, tuple[str, ...]]] = {
    # config
    "page_size of the wrong type": (
        lambda s, h, t: error_of(lambda: commerce_resource(s, page_size="many")),
        "error",
        ("page_size",),
    ),
    "page_size above the API limit": (
        lambda s, h, t: error_of(lambda: StripeResource(api_url=s.url, api_key="k", page_size=1000)),
        "error",
        ("page_size", "100"),
    ),
    "max_attempts of zero": (
        lambda s, h, t: error_of(lambda: commerce_resource(s, max_attempts=0)),
        "error",
        ("max_attempts",),
    ),
    "hub URL with an SQL injection attempt": (
        lambda s, h, t: error_of(
            lambda: HubResource(
                url="postgresql://root:pw-9q7@127.0.0.1:5432/test; DROP SCHEMA core CASCADE; --"
            ).backend.scalar("SELECT 1")
        ),
        "error",
        ("HUB_URL", "does not exist"),
    ),
    "hub URL that is no URL": (
        lambda s, h, t: error_of(lambda: HubResource(url="'; DROP TABLE ops.sync_state; --").backend),
        "error",
        ("HUB_URL", "accepted forms"),
    ),
    "hub URL of an unsupported database": (
        lambda s, h, t: error_of(lambda: HubResource(url="mysql://root@127.0.0.1/hub").backend),
        "error",
        ("HUB_URL", "mysql"),
    ),
    "unknown schema name in config": (
        lambda s, h, t: error_of(lambda: TableSpec("evil.products", (("a", "text"),), ("a",))),
        "error",
        ("evil.products", "schema must be one of"),
    ),
    "table name with an injection attempt": (
        lambda s, h, t: error_of(lambda: TableSpec('core.x"; DROP TABLE core.products; --', (("a", "text"),), ("a",))),
        "error",
        ("invalid table name",),
    ),
    "column type with an injection attempt": (
        lambda s, h, t: error_of(lambda: TableSpec("core.x", (("a", "text); DROP TABLE y; --"),), ("a",))),
        "error",
        ("column 'a' has unknown type",),
    ),
    "unknown Stripe list": (
        lambda s, h, t: error_of(
            lambda: list(StripeResource(api_url=s.url + "/payments", api_key="sk_test_hub").list_pages("invoices"))
        ),
        "error",
        ("unknown Stripe object list 'invoices'",),
    ),
    "timestamp without a time zone": (
        lambda s, h, t: error_of(lambda: format_timestamp(datetime(2026, 1, 1))),
        "error",
        ("has no time zone",),
    ),
    "missing supplier landing directory": (
        lambda s, h, t: error_of(
            lambda: WarehouseResource(api_url=s.url, api_key="k", landing_dir=str(t / "nowhere")).supplier_files()
        ),
        "error",
        ("WAREHOUSE_LANDING_DIR", "does not exist"),
    ),
    "wrong payments API key": (
        lambda s, h, t: error_of(
            lambda: list(StripeResource(api_url=s.url + "/payments", api_key="sk_wrong_1x").list_pages("charges"))
        ),
        "error",
        ("PAYMENTS_API_KEY", "rejected", "HTTP 401"),
    ),
    "wrong warehouse API key": (
        lambda s, h, t: error_of(
            lambda: list(WarehouseResource(api_url=s.url + "/warehouse", api_key="wh_wrong_2y").pages("suppliers"))
        ),
        "error",
        ("WAREHOUSE_API_KEY", "rejected"),
    ),
    "fault profile that is no JSON": (
        lambda s, h, t: faults_file(t, "{not json"),
        "error",
        ("--faults", "faults.json", "cannot read"),
    ),
    "fault profile with an unknown kind": (
        lambda s, h, t: faults_file(t, '[{"kind": "meteor"}]'),
        "error",
        ("--faults", "'kind' must be one of"),
    ),
    # source records
    "record without its id": (lambda s, h, t: landed(h, [channel(), {"version": 1}]), "quarantine", ("'id'",)),
    "id of the wrong type": (lambda s, h, t: landed(h, [channel(id=12345)]), "quarantine", ("'id' is 12345",)),
    "version of the wrong type": (lambda s, h, t: landed(h, [channel(version="7")]), "quarantine", ("'version'",)),
    "NaN version": (lambda s, h, t: landed(h, [channel(version=float("nan"))]), "quarantine", ("'version' is nan",)),
    "Infinity version": (lambda s, h, t: landed(h, [channel(version=float("inf"))]), "quarantine", ("'version'",)),
    "modification time that is no time": (
        lambda s, h, t: landed(h, [channel(lastModifiedAt="yesterday-ish")]),
        "quarantine",
        ("cannot land in raw.commerce_channels",),
    ),
    "10 MB string": (
        lambda s, h, t: landed(h, [channel(description="x" * 10_000_000)]),
        "quarantine",
        ("above the 1,048,576-byte limit",),
    ),
    "string that is no valid UTF-8": (
        lambda s, h, t: landed(h, [channel(key="caf\udce9")]),
        "quarantine",
        ("cannot land",),
    ),
    "deeply nested JSON record": (
        lambda s, h, t: landed(h, [channel(custom=nested(600))]),
        "quarantine",
        ("cannot land",),
    ),
    "Stripe object with a creation time of the wrong type": (
        lambda s, h, t: landed(h, [{"id": "ch_1", "created": "monday"}], shape=STRIPE),
        "quarantine",
        ("cannot land in raw.payments_charges",),
    ),
    "duplicate keys in one page": (
        lambda s, h, t: landed(h, [channel(version=1), channel(version=3), channel(version=2)]),
        "lands",
        ("ch-1@3",),  # deduplicated by key: the newest version is kept, once
    ),
    # response bodies
    "NaN and Infinity in a JSON body": (
        lambda s, h, t: http_body(b'{"object": "list", "has_more": false, "data": [{"id": "ch_1", "amount": NaN}]}'),
        "error",
        ("payments", "GET /v1/charges", "unreadable response", "2 attempt(s)"),
    ),
    "non-UTF-8 bytes in a JSON body": (
        lambda s, h, t: http_body(b'{"object": "list", "has_more": false, "data": [{"id": "ch_\xff"}]}'),
        "error",
        ("payments", "GET /v1/charges", "unreadable response"),
    ),
    "deeply nested JSON body": (
        lambda s, h, t: http_body(b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "error",
        ("payments", "GET /v1/charges", "unreadable response"),
    ),
    # files
    "CSV with a BOM": (lambda s, h, t: supplier_file(t, h, b"\xef\xbb\xbf" + HEADER + GOOD_ROW), "lands", ("1 rows",)),
    "empty file": (lambda s, h, t: supplier_file(t, h, b""), "error", ("suppliers_2026-01-02.csv", "empty file")),
    "CSV with non-UTF-8 bytes": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1,SKU-\xff,4.50,EUR,6,100\n"),
        "error",
        ("suppliers_2026-01-02.csv", "not a readable UTF-8 CSV"),
    ),
    "CSV with a wrong header": (
        lambda s, h, t: supplier_file(t, h, b"id,cost\n1,2\n"),
        "error",
        ("wrong header", "expected columns supplier_id"),
    ),
    "negative quantity": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1,SKU-1,4.50,EUR,6,-5\n"),
        "quarantine",
        ("available_to_promise -5 is negative",),
    ),
    "unknown currency": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1,SKU-1,4.50,XYZ,6,1\n"),
        "quarantine",
        ("unknown currency 'XYZ'",),
    ),
    "cost of the wrong type": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1,SKU-1,cheap,EUR,6,1\n"),
        "quarantine",
        ("unit_cost 'cheap' is not a decimal number",),
    ),
    "missing required field": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1,,4.50,EUR,6,1\n"),
        "quarantine",
        ("missing sku",),
    ),
    "duplicate rows": (
        lambda s, h, t: supplier_file(t, h, HEADER + GOOD_ROW + GOOD_ROW),
        "quarantine",
        ("duplicate of line 2",),
    ),
    "10 MB field in a CSV": (
        lambda s, h, t: supplier_file(t, h, HEADER + b"SUP-1,S-1," + b"x" * 10_000_000 + b",4.50,EUR,6,1\n"),
        "error",
        ("not a readable UTF-8 CSV", "field larger than field limit"),
    ),
}
SECRETS_IN_CASES = ("pw-9q7", "sk_wrong_1x", "wh_wrong_2y")


def test_the_table_has_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case: str, simulator: Simulator, hub: HubResource, tmp_path: Path, matrix):
    produce, kind, words = CASES[case]
    outcome = produce(simulator, hub, tmp_path)
    assert outcome.kind == kind, outcome
    for word in words:
        assert word in outcome.text, (word, outcome)
    assert "Traceback" not in outcome.text
    for secret in SECRETS_IN_CASES:
        assert secret not in outcome.text
    matrix.proved("bad input", "bad-input", cases=1)
