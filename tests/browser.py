"""Headless Debian chromium driven by Playwright (never a downloaded browser): the fixtures `browser` and
`visit` (tests/conftest.py) and what every page must satisfy when loaded from file://."""

from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Visit:
    page: object
    console_errors: list
    requests: list
    dialogs: list


def launch(playwright):
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: run scripts/setup-system.sh (installs Debian's chromium)"
    )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def visitor(context):
    """load(path) -> Visit: the page loaded from file://, with every console error, request and dialog."""

    def load(path: Path) -> Visit:
        page = context.new_page()
        seen = Visit(page, [], [], [])
        page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return seen

    return load


def assert_clean(seen: Visit) -> None:
    """No console error, no dialog, no request leaving file://, no script element."""
    assert seen.console_errors == []
    assert seen.dialogs == []
    assert seen.requests and all(url.startswith("file://") for url in seen.requests), seen.requests
    assert seen.page.locator("script").count() == 0
