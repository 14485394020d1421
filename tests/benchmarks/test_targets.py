"""The raw-limit target says when the sync's CPU work alone rules it out on the machine measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.scenarios import targets

BASELINE = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "baseline.json"


def _raw_limit_target(floor_ratio: float, measured: float) -> dict:
    scenarios = json.loads(BASELINE.read_text())["scenarios"]
    scenarios["full_sync"]["vs_raw_limit"]["median"] = measured
    scenarios["full_sync"]["cpu_floor_vs_raw_limit"]["median"] = floor_ratio
    return next(t for t in targets(scenarios) if t["name"] == "full sync vs raw limit")


def test_a_cpu_floor_below_the_goal_is_named():
    target = _raw_limit_target(floor_ratio=0.634, measured=0.468)
    assert target["met"] is False
    assert target["note"] == "its CPU work allows at most 0.63 on this machine"


@pytest.mark.parametrize(("floor_ratio", "measured", "met"), [(0.85, 0.62, False), (0.90, 0.72, True)])
def test_a_cpu_floor_above_the_goal_adds_nothing(floor_ratio: float, measured: float, met: bool):
    target = _raw_limit_target(floor_ratio, measured)
    assert target["met"] is met
    assert target["note"] == ""
