"""Browser tests: Debian's Chromium driven by Playwright (``executable_path``;
Playwright's own browser download is not used), one calserver process and an
aiosmtpd server per module, screenshots kept under tests/artifacts/ (ignored
by git), axe-core run on every page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Server, _migrated_database, start_server
from tests.notifications.fakes import SmtpServer
from tests.web.office import PublicOffice, set_up

CHROMIUM = os.environ.get("CALSERVER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SERIOUS = ("serious", "critical")


@dataclass
class Stack:
    server: Server
    smtp: SmtpServer
    office: PublicOffice


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A server on SQLite (the browser drives pages; the databases are the
    protocol tests' business) with its SMTP server and an office."""
    smtp = SmtpServer().start()
    config = (
        f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\nsender = rdv@mairie.example.fr\n"
        "[notifications]\nworker = false\n[webhooks]\nworker = false\n"
    )
    with _migrated_database("sqlite", request, tmp_path_factory.mktemp("db")) as url:
        server = start_server(url, tmp_path_factory.mktemp("browser"), extra_config=config)
        try:
            yield Stack(server, smtp, set_up(server))
        finally:
            server.stop()
            smtp.stop()


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
