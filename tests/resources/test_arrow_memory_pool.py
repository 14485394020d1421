"""Arrow's allocator in a process that uses the hub: the C library's malloc unless the operator chose one."""

import os
import subprocess
import sys

import pytest

PROBE = "import resources.hub, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def pool_backend(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_the_hub_makes_arrow_allocate_with_the_system_allocator():
    assert pool_backend() == "system"


@pytest.mark.parametrize("backend", ["mimalloc", "jemalloc"])
def test_arrow_default_memory_pool_still_decides(backend):
    assert pool_backend(ARROW_DEFAULT_MEMORY_POOL=backend) == backend
