"""The simulator in a process of its own, sized for a benchmark, and the CPU time it spends serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_KEY = "beauty-hub"
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-5c1d"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimulatorProcess:
    """`python -m simulators serve` on a free loopback port; a context manager that stops it."""

    def __init__(self, products: int, seed: int, start_timeout_s: float = 900.0):
        self.products, self.seed = products, seed
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "simulators", "serve", "--port", str(self.port), "--products", str(products),
            "--seed", str(seed), "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--quiet",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self.process.returncode}: {self.process.stderr.read()}")
            try:
                requests.get(f"{self.url}/_admin/health", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the simulator did not answer within {start_timeout_s:.0f} s") from None
                time.sleep(0.2)

    def admin(self, method: str, path: str, **body) -> dict:
        response = requests.request(method, f"{self.url}/_admin/{path}", json=body or None, timeout=1800)
        response.raise_for_status()
        return response.json()

    def reset(self, products: int) -> None:
        self.admin("POST", "reset", products=products, seed=self.seed)
        self.products = products

    def commerce_stats(self) -> dict:
        return self.admin("GET", "stats")["commerce"]

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the simulator process so far (Linux /proc), else None."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
