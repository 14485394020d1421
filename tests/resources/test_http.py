import http.server
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from resources.http import ExternalSystemError, HttpClient, RetryPolicy, parse_retry_after


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0", 0.0), (None, None), ("soon", None)])
def test_retry_after_in_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 30


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


class _Proxy(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself, naming the URL it was asked for."""

    def do_GET(self):
        body = json.dumps({"proxied": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_client_goes_through_the_proxy_the_environment_names(proxy_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    client = HttpClient("warehouse", "http://warehouse.invalid/api", setting="WAREHOUSE_API_URL")
    assert client.get_json("/items") == {"proxied": "http://warehouse.invalid/api/items"}


def test_no_proxy_in_the_environment_sends_a_client_direct(proxy_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "warehouse.invalid")
    client = HttpClient(
        "warehouse", "http://warehouse.invalid/api", setting="WAREHOUSE_API_URL", retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(ExternalSystemError, match=re.escape("cannot reach http://warehouse.invalid/api")):
        client.get_json("/items")
