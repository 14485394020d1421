"""Fixtures for the simulator contract tests.

``commerce_sim`` starts ``python -m simulators serve`` as a subprocess on a free loopback port
(300 products, seed 7) and yields its base URL. It is module-scoped; tests that need a pristine
world call ``POST /_admin/reset`` (see ``clean_world``). The name avoids the session fixture
``simulator`` that the root ``tests/conftest.py`` may define.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_PRODUCTS = 300
SIM_SEED = 7
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    """A simulator subprocess with its output captured in a temporary file."""

    def __init__(self, *args: str, products: int = SIM_PRODUCTS, seed: int = SIM_SEED, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed in close()
        self.cmd = [
            sys.executable, "-m", "simulators", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--products", str(products), "--seed", str(seed), *args,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"simulator exited early with code {self.proc.returncode}\n"
                    f"command: {' '.join(self.cmd)}\noutput:\n{self.output()}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/_admin/stats", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"simulator did not answer /_admin/stats within {timeout:.0f}s\n"
            f"command: {' '.join(self.cmd)}\noutput:\n{self.output()}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return int(self.proc.returncode)

    def close(self) -> None:
        self.stop()
        self.log.close()


def start_sim(*args: str, products: int = SIM_PRODUCTS, seed: int = SIM_SEED, attempts: int = 3) -> SimProcess:
    """Start a simulator subprocess and wait until it answers (retrying if the port got taken)."""
    last: Exception | None = None
    for _ in range(attempts):
        sim = SimProcess(*args, products=products, seed=seed)
        try:
            sim.wait_ready()
            return sim
        except RuntimeError as exc:
            last = exc
            out = sim.output()
            sim.close()
            if "Address already in use" not in out:
                break
    raise RuntimeError(str(last))


@pytest.fixture(scope="module")
def commerce_sim() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a simulator subprocess (300 products, seed 7)."""
    try:
        sim = start_sim("--quiet")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield sim.url
    finally:
        sim.close()


def _restore(base: str) -> None:
    requests.delete(f"{base}/_admin/faults", timeout=10).raise_for_status()
    requests.post(f"{base}/_admin/auth", json={"token_ttl_seconds": 172800}, timeout=10).raise_for_status()
    r = requests.post(f"{base}/_admin/reset", json={"seed": SIM_SEED, "products": SIM_PRODUCTS}, timeout=60)
    r.raise_for_status()


@pytest.fixture
def clean_world(commerce_sim: str) -> Iterator[str]:
    """A pristine world (seed 7, 300 products, no faults, default token lifetime) before and after."""
    _restore(commerce_sim)
    yield commerce_sim
    _restore(commerce_sim)
