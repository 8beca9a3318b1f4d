"""The verification email goes through the notification worker: the identity
step answers at once, and the email still reaches the usager when the SMTP
server is down for a while, even across a restart of calserver."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from tests.conftest import start_server
from tests.notifications.fakes import SmtpServer, wait_for
from tests.web import journey
from tests.web.office import set_up, slot

CONFIG = "[smtp]\nhost = 127.0.0.1\nport = {port}\nsender = rdv@mairie.example.fr\n"


def test_the_email_waits_out_smtp_down_and_a_restart(database_url: str, tmp_path: Path) -> None:
    smtp = SmtpServer()  # its port is known, nothing listens yet
    config = CONFIG.format(port=smtp.port) + "[webhooks]\nworker = false\n"
    email = "patient@example.org"
    first = start_server(database_url, tmp_path / "first", extra_config=config)
    try:
        office = set_up(first)
        with httpx.Client(follow_redirects=False, timeout=30) as client:
            asked = journey.ask(
                client, office.url, office.motif, slot(office.day, "10:00"), office.lieu,
                email=email,
            )  # fmt: skip
            # No SMTP server: the usager is not told to come back later.
            assert asked.status_code == 303, asked.text[:500]
            # The first server's worker tried, and keeps the email for later.
            wait_for(lambda: "verification emails: 1 retry" in first.log())
            first.stop()
            smtp.start()
            second = start_server(database_url, tmp_path / "second", extra_config=config)
            try:
                office = dataclasses.replace(office, server=second)
                message = wait_for(lambda: journey.verifications(smtp.mailbox, email), 30)[-1]
                code, _ = journey.code_and_link(message)
                request_url = second.url + asked.headers["Location"]
                done = journey.type_code(client, request_url, code)
                assert done.status_code == 303, done.text[:500]
                assert done.headers["Location"].endswith("/rendez-vous")
                assert len(journey.verifications(smtp.mailbox, email)) == 1  # once
            finally:
                second.stop()
    finally:
        first.stop()
        smtp.stop()
