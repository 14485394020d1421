"""Where quality output lives on disk: the report, Great Expectations Data Docs and screenshots.

Everything sits under one quality directory, env `QUALITY_DIR` (default `data/quality`, relative to the
working directory), read on each call so tests can point it at a temporary directory. Data Docs keep
the newest `QUALITY_DOCS_KEEP` validations of each suite (default 30, what the report links to).
"""

import os
from pathlib import Path

DEFAULT_QUALITY_DIR = "data/quality"
DOCS_KEEP_SETTING = "QUALITY_DOCS_KEEP"
#: the report links the last 30 validations of each dataset (`quality.report.RECENT_RUNS`)
DEFAULT_DOCS_KEEP = 30


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


def docs_keep() -> int:
    """How many validations of each suite Data Docs keep (`QUALITY_DOCS_KEEP`, default 30); older ones are pruned."""
    text = os.environ.get(DOCS_KEEP_SETTING, "").strip()
    if not text:
        return DEFAULT_DOCS_KEEP
    try:
        keep = int(text)
    except ValueError:
        keep = 0
    if keep < 1:
        raise ValueError(f"{DOCS_KEEP_SETTING}={text!r}: expected a whole number of validations per suite, at least 1")
    return keep
