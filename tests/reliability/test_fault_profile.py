"""A fault profile switches faults on from start-up: `python -m simulators serve --faults FILE.json`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import free_port

PROFILE = {
    "faults": [
        {"kind": "expire_token", "after": 40, "next": 1},
        {"status": 503, "rate": 0.05, "seed": 1, "path_prefix": "/payments"},
        {"kind": "malformed", "variant": "wrong_type", "every": 7, "path_prefix": "/warehouse"},
    ]
}


def serve(profile: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "simulators", "serve", "--port", str(port), "--products", "20", "--quiet"]
    return subprocess.Popen(
        [*command, "--faults", str(profile)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_profile_is_on_from_the_start(tmp_path: Path, matrix):
    profile = tmp_path / "faults.json"
    profile.write_text(json.dumps(PROFILE))
    port = free_port()
    process = serve(profile, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                rules = requests.get(f"http://127.0.0.1:{port}/_admin/faults", timeout=1).json()["faults"]
                break
            except requests.RequestException:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
                time.sleep(0.2)
        assert [r["kind"] for r in rules] == ["expire_token", "status", "malformed"]
        assert rules[0]["after"] == 40 and rules[1]["rate"] == 0.05 and rules[2]["variant"] == "wrong_type"
    finally:
        process.terminate()
        process.wait(timeout=10)
    matrix.proved("fault profile at start-up", "bad-input", rules=len(rules))


def test_a_bad_profile_stops_the_start_naming_file_and_field(tmp_path: Path):
    profile = tmp_path / "bad.json"
    profile.write_text(json.dumps({"faults": [{"kind": "reset", "every": 0}]}))
    process = serve(profile, free_port())
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "--faults" in err and "bad.json" in err and "'every' must be an integer >= 1" in err
