"""Browser tests: Debian's Chromium driven by Playwright (``executable_path``;
Playwright's own browser download is not used), one calserver process and an
aiosmtpd server per module, screenshots kept under tests/artifacts/ (ignored
by git), axe-core run on every page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _migrated_database
from tests.web.office import Stack, running

CHROMIUM = os.environ.get("CALSERVER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """On SQLite only: the browser drives pages, the databases are the
    protocol tests' business."""
    database = _migrated_database("sqlite", request, tmp_path_factory.mktemp("db"))
    with database as url, running(url, tmp_path_factory.mktemp("browser")) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield found
        found.close()
