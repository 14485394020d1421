"""Where quality output lives on disk: the report, Great Expectations Data Docs and screenshots.

Everything sits under one quality directory, env `QUALITY_DIR` (default `data/quality`, relative to the
working directory), read on each call so tests can point it at a temporary directory.
"""

import os
from pathlib import Path

DEFAULT_QUALITY_DIR = "data/quality"


def quality_dir() -> Path:
    """The quality directory (`QUALITY_DIR`, default `data/quality`)."""
    return Path(os.environ.get("QUALITY_DIR") or DEFAULT_QUALITY_DIR)


def report_path() -> Path:
    """The summary report page, `<quality dir>/index.html`."""
    return quality_dir() / "index.html"


def gx_dir() -> Path:
    """The Great Expectations project root, `<quality dir>/gx`."""
    return quality_dir() / "gx"


def data_docs_dir() -> Path:
    """The Data Docs site, `<quality dir>/gx/docs` (its `index.html` lists every validation)."""
    return gx_dir() / "docs"
