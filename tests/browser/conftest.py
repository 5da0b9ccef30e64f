"""Real Chromium (Debian's, at /usr/bin/chromium) driven by pytest-playwright
against Django's live_server. Run these in their own pytest process:

    DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest tests/browser -q

Playwright's sync API runs an event loop in this thread; Django refuses ORM
calls from a thread with a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE is
set (see docs TESTING.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Never `playwright install` here: its download fails; Debian's Chromium works.
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # Phone first, as people use it; shot() also takes the desktop width.
    return {**browser_context_args, "viewport": PHONE, "locale": "en-US", "timezone_id": "America/Los_Angeles"}


def pytest_collection_modifyitems(config, items):
    browser_dir = Path(__file__).resolve().parent
    for item in items:
        if browser_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def shot(page, name: str) -> list[Path]:
    """Full-page screenshots at phone (390 px) and desktop (1280 px) width,
    saved as test-artifacts/<name>-390.png and -1280.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    paths = []
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        path = ARTIFACTS / f"{name}-{size['width']}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(PHONE)
    return paths
