"""Great Expectations Data Docs that open offline.

GX 1.24 pages load jQuery, Bootstrap, bootstrap-table, bootstrap-datepicker, Font Awesome, Vega and the
bootstrap-dark theme from public CDNs, and their logo from S3. `make install` installs those exact
versions with npm (`package.json` at the repository root). `make_offline` copies the files a site needs
into `<site>/static/vendor/` (same paths as under `node_modules/`) and points every page at them with a
relative path. Links (`<a href>`) are left alone: following them is the reader's choice, not a load.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
VENDOR_DIR = Path("static") / "vendor"
_TABLE = "https://unpkg.com/bootstrap-table@{version}/dist/"
_FILTER_CONTROL = "extensions/filter-control/bootstrap-table-filter-control"
# Each CDN address in GX's templates -> the same file under node_modules (and under static/vendor/).
VENDORED: dict[str, str] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    _TABLE.format(version="1.19.1") + "bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    _TABLE.format(version="1.19.1") + "bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    _TABLE.format(version="1.19.1") + f"{_FILTER_CONTROL}.min.js": f"bootstrap-table/dist/{_FILTER_CONTROL}.min.js",
    # GX asks for the filter-control CSS of 1.19.0 beside the 1.19.1 scripts; 1.19.1's CSS serves both.
    _TABLE.format(version="1.19.0") + f"{_FILTER_CONTROL}.css": f"bootstrap-table/dist/{_FILTER_CONTROL}.css",
    _TABLE.format(version="1.19.0") + f"{_FILTER_CONTROL}.min.css": f"bootstrap-table/dist/{_FILTER_CONTROL}.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free/css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"
    ),
    # The files jsDelivr serves for a bare package name (each package.json's "jsdelivr" field).
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# Folders a vendored file loads from by relative path (Font Awesome's CSS: ../webfonts/*).
VENDORED_DIRS = ("@fortawesome/fontawesome-free/webfonts",)
# GX's images on S3; those it also ships in the site's static/images/ are served from there.
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_LOADING_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(r'(\s(?:src|href)=")([^"]*)(")', re.IGNORECASE)
# Subresource integrity and CORS mode name the CDN copy; a file:// page cannot load a local file with them.
_CDN_ONLY_ATTRIBUTES = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"', re.IGNORECASE)
_CSS_URL = re.compile(r"""url\((['"]?)(""" + re.escape(GX_IMAGES) + r"""[^'")]*)\1\)""")
_EXTERNAL = ("http://", "https://", "//")
_STAMP = VENDOR_DIR / ".offline"
_warned: set[Path] = set()


def make_offline(site: Path, node_modules: Path = NODE_MODULES) -> list[Path]:
    """Vendor the CDN assets into `site` and rewrite the pages GX wrote since the last call; returns the pages
    changed. Without the npm install, pages stay as GX wrote them and one warning names the fix."""
    if not site.is_dir():
        return []
    missing = [p for p in (*VENDORED.values(), *VENDORED_DIRS) if not (node_modules / p).exists()]
    if missing:
        if site not in _warned:
            _warned.add(site)
            log.warning(
                "Data Docs in %s keep loading their scripts and styles from the internet: %s is missing "
                "(run `make install`, which runs npm ci)",
                site,
                node_modules / missing[0],
            )
        return []
    _copy_assets(node_modules, site / VENDOR_DIR)
    stamp = site / _STAMP
    since = stamp.stat().st_mtime_ns if stamp.exists() else None
    # A second of overlap: file times come from a coarser clock than time_ns; re-reading a page is harmless.
    started = time.time_ns() - 1_000_000_000
    changed: list[Path] = []
    unknown: set[str] = set()
    for path in (*site.rglob("*.html"), *(site / "static" / "styles").glob("*.css")):
        if since is None or path.stat().st_mtime_ns >= since:
            rewritten, still_external = _rewrite(path, site)
            changed += [path] if rewritten else []
            unknown.update(still_external)
    if unknown:
        log.warning(
            "Data Docs in %s still load %s: add them to VENDORED in quality/data_docs.py", site, sorted(unknown)
        )
    stamp.touch()
    os.utime(stamp, ns=(started, started))
    return changed


def external_loads(html: str) -> list[str]:
    """Every address a page loads from outside the machine: script, stylesheet and image sources, CSS urls."""
    tags = (m.group(2) for tag in _LOADING_TAG.finditer(html) for m in _URL_ATTRIBUTE.finditer(tag.group(0)))
    css = re.findall(r"""url\(['"]?((?:https?:)?//[^'")]*)""", html)
    return [url for url in (*tags, *css) if url.startswith(_EXTERNAL)]


def _copy_assets(node_modules: Path, vendor: Path) -> None:
    """Copy each vendored file whose copy is missing or differs in size or time (so only once per version)."""
    files = [Path(p) for p in VENDORED.values()]
    files += [f.relative_to(node_modules) for d in VENDORED_DIRS for f in (node_modules / d).rglob("*") if f.is_file()]
    for relative in files:
        source, target = node_modules / relative, vendor / relative
        kept = source.stat()
        if target.exists() and (target.stat().st_size, target.stat().st_mtime_ns) == (kept.st_size, kept.st_mtime_ns):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _rewrite(path: Path, site: Path) -> tuple[bool, list[str]]:
    """Point one page's (or stylesheet's) CDN and S3 loads at the site's local copies.

    Returns whether the file changed and the external loads left (none unless GX added a CDN file)."""
    text = path.read_text(encoding="utf-8")
    to_site = Path(os.path.relpath(site, path.parent)).as_posix()

    def local(url: str) -> str | None:
        if url in VENDORED:
            return f"{to_site}/{(VENDOR_DIR / VENDORED[url]).as_posix()}"
        image = url[len(GX_IMAGES) :].split("?", 1)[0] if url.startswith(GX_IMAGES) else ""
        if image and (site / "static" / "images" / image).is_file():
            return f"{to_site}/static/images/{image}"
        return None

    def tag(match: re.Match) -> str:
        original = match.group(0)
        swapped = _URL_ATTRIBUTE.sub(lambda m: m.group(1) + (local(m.group(2)) or m.group(2)) + m.group(3), original)
        return original if swapped == original else _CDN_ONLY_ATTRIBUTES.sub("", swapped)

    def css_url(match: re.Match) -> str:
        # GX's dark-theme logo is not among the images it ships: the dark theme shows no logo rather than load it.
        url = local(match.group(2))
        return f"url('{url}')" if url else "none"

    rewritten = _CSS_URL.sub(css_url, _LOADING_TAG.sub(tag, text) if path.suffix == ".html" else text)
    if rewritten != text:
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(rewritten, encoding="utf-8")
        partial.replace(path)
    return rewritten != text, external_loads(rewritten)
