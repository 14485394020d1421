"""Browser fixtures: the machine's Chromium (never a browser Playwright downloads), driven by Playwright.

Tests save screenshots under data/quality/screenshots/ for the README (docs/img/ holds committed copies).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1200, "height": 750}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "data" / "quality" / "screenshots"


@dataclass
class Watched:
    """A page and what went wrong on it: console errors, uncaught exceptions, failed and external requests."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def watched(chromium) -> Iterator[Watched]:
    """A fresh page; requests that leave the machine are refused and recorded (the tests run offline)."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    watched = Watched(page)
    page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.page_errors.append(str(e)))
    page.on("requestfailed", lambda r: watched.failed_requests.append(r.url))

    def refuse(route) -> None:
        watched.external_requests.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(("file:", "http://127.0.0.1", "data:")), refuse)
    yield watched
    context.close()
