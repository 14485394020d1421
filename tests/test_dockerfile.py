"""The Dockerfile is buildable: what it copies exists, and its `pip install .` builds and resolves.

Docker itself is not needed: the test rebuilds the image's context (its COPY lines) in a temporary
folder and runs the same install there, as a wheel build plus a full dependency resolution.
"""

import json
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("assets", "dagster_project", "pipelines", "quality", "resources", "simulators")


def copied_paths() -> list[str]:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *parts, _destination = shlex.split(line)[1:]
            sources += parts
    return sources


def test_dockerfile_copies_every_package_and_nothing_missing():
    sources = copied_paths()
    assert set(PACKAGES) <= set(sources), f"the image misses packages: {set(PACKAGES) - set(sources)}"
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert not missing, f"the Dockerfile copies paths that do not exist: {missing}"


@pytest.mark.slow
def test_the_image_pip_install_builds_and_resolves(tmp_path: Path):
    context = tmp_path / "context"
    context.mkdir()
    for source in copied_paths():
        target = context / source
        if (ROOT / source).is_dir():
            subprocess.run(["cp", "-r", str(ROOT / source), str(target)], check=True)
        else:
            target.write_bytes((ROOT / source).read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "wheels"), str(context)], check=True)
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert all(f"{package}/__init__.py" in names for package in PACKAGES), names
    report = tmp_path / "report.json"
    subprocess.run(
        [*pip, "install", "--dry-run", "--ignore-installed", "--report", str(report), str(context)], check=True
    )
    resolved = {
        item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.read_text())["install"]
    }
    assert {"dagster", "dagster-postgres", "great-expectations", "psycopg"} <= resolved
