"""Fixtures of the reliability tests, and the fault x guarantee matrix printed at the end of the run."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.conftest import Simulator
from tests.reliability.harness import PRODUCTS_UNDER_TEST, SEED

GUARANTEES = ("complete", "atomic", "idempotent", "watermark", "give-up", "bad-input", "secrets", "credentials")


class Matrix:
    """What each passing test proved: (fault, guarantee) -> counts checked (records compared, kills survived...)."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def proved(self, fault: str, guarantee: str, **counts: int) -> None:
        assert guarantee in GUARANTEES, guarantee
        cell = self.cells[(fault, guarantee)]
        cell["tests"] += 1
        for name, n in counts.items():
            cell[name] += n

    def lines(self) -> list[str]:
        faults = sorted({f for f, _ in self.cells})
        used = [g for g in GUARANTEES if any(g == c for _, c in self.cells)]
        width = max([len(f) for f in faults] + [5])
        columns = {g: max(len(g), *(len(self._cell(f, g)) for f in faults)) for g in used}
        lines = ["fault".ljust(width) + " | " + " | ".join(g.ljust(columns[g]) for g in used)]
        lines.append("-" * len(lines[0]))
        for fault in faults:
            lines.append(fault.ljust(width) + " | " + " | ".join(self._cell(fault, g).ljust(columns[g]) for g in used))
        return lines

    def _cell(self, fault: str, guarantee: str) -> str:
        cell = self.cells.get((fault, guarantee))
        if not cell:
            return "-"
        return "ok " + " ".join(f"{n}={v}" for n, v in cell.items() if n != "tests") if len(cell) > 1 else "ok"


MATRIX = Matrix()


@pytest.fixture
def matrix() -> Matrix:
    return MATRIX


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands what its tests proved to the controller, which prints the matrix."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_matrix"] = [[f, g, dict(counts)] for (f, g), counts in MATRIX.cells.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    for fault, guarantee, counts in getattr(node, "workeroutput", {}).get("reliability_matrix", []):
        cell = MATRIX.cells[(fault, guarantee)]
        for name, n in counts.items():
            cell[name] += n


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not MATRIX.cells:
        return
    terminalreporter.section("reliability: fault x guarantee (counts checked by passing tests)")
    for line in MATRIX.lines():
        terminalreporter.write_line(line)


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    """The simulator with a small world (reset after each test by the `simulator` fixture)."""
    simulator.reset(products=PRODUCTS_UNDER_TEST, seed=SEED)
    return simulator
