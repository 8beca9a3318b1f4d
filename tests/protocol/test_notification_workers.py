"""A notification worker as a process of its own (``calserver worker``),
killed with SIGKILL while the SMTP server has not yet answered: the next
worker sends what it had claimed once the lease ends, so nothing is lost."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_server
from tests.notifications.fakes import SmtpServer, smtp_running, wait_for
from tests.protocol.pmi_office import Office, book, ok, set_up
from tests.protocol.test_webhook_workers import _stop, _worker

pytestmark = pytest.mark.slow
SLOTS = ["09:00", "09:30", "10:00"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_running()


def _config(smtp: SmtpServer) -> str:
    # Lease: 2 x 2 s + 10 s = 14 s.
    return (
        "[webhooks]\nworker = false\n"
        "[notifications]\nworker = false\nretry_first_ms = 200\npoll_seconds = 1\n"
        f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\ntimeout_seconds = 2\n"
    )


def test_a_worker_killed_mid_send_loses_nothing(
    database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    config = _config(smtp)
    server = start_server(database_url, tmp_path / "server", extra_config=config)
    try:
        office: Office = set_up(server)
        for at in SLOTS:
            ok(book(office, at), 201)  # the office's usager has an email, no phone
        smtp.mailbox.delay_s = 1.5
        first = _worker(office, tmp_path, "first", config)
        try:
            wait_for(lambda: smtp.mailbox.started >= 1, timeout=30)
            first.send_signal(signal.SIGKILL)  # while the SMTP server keeps it waiting
            first.wait(10)
        finally:
            _stop(first)
        smtp.mailbox.delay_s = 0.0
        second = _worker(office, tmp_path, "second", config)
        try:
            subjects = wait_for(
                lambda: (
                    len({m["Subject"] for m in smtp.mailbox.to("c@example.org")}) == 3
                    and {m["Subject"] for m in smtp.mailbox.to("c@example.org")}
                ),
                timeout=60,
            )
        finally:
            _stop(second)
        assert all(s.endswith("est confirmé") for s in subjects)  # type: ignore[union-attr]
    finally:
        server.stop()
