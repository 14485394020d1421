"""Simulated external systems (commerce today; payments, warehouse, analytics later).

Run ``python -m simulators serve`` or, in-process, ``simulators.server.start_in_thread(...)``.
This package never imports the pipeline (resources, assets, quality, pipelines, dagster_project).
"""

__all__ = ["start_in_thread"]


def start_in_thread(*args, **kwargs):
    """Shortcut for :func:`simulators.server.start_in_thread` (imported lazily)."""
    from simulators.server import start_in_thread as _start

    return _start(*args, **kwargs)
