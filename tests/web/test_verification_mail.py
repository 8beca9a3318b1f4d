"""The verification email goes through the notification worker: the identity
step answers at once, and the email still reaches the usager when the SMTP
server is down for a while, even across a restart of calserver."""

from __future__ import annotations

import dataclasses
import re
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


def test_a_refused_address_is_told_on_the_code_page(database_url: str, tmp_path: Path) -> None:
    smtp = SmtpServer().start()
    email = "nobody@example.org"
    smtp.mailbox.refused[email] = "550 5.1.1 no such user"
    server = start_server(database_url, tmp_path, extra_config=CONFIG.format(port=smtp.port))
    try:
        office = set_up(server)
        with httpx.Client(follow_redirects=False, timeout=30) as client:
            asked = journey.ask(
                client, office.url, office.motif, slot(office.day, "10:30"), office.lieu,
                email=email,
            )  # fmt: skip
            assert asked.status_code == 303, asked.text[:500]
            code_url = server.url + asked.headers["Location"]

            def refusal_shown() -> httpx.Response | None:
                found = client.get(code_url)
                return found if "adresse a été refusée" in found.text else None

            page = wait_for(refusal_shown)
            assert isinstance(page, httpx.Response) and page.status_code == 200
            text = page.text
            assert 'role="alert"' in text and email in text
            identity = re.search(r'href="(/prendre-rdv/[^"]+/identite\?[^"]+)"', text)
            assert identity is not None
            again = client.get(server.url + identity.group(1).replace("&amp;", "&"))
            assert again.status_code == 200 and 'name="email"' in again.text
        assert journey.verifications(smtp.mailbox, email) == []
        assert email not in server.log()
    finally:
        server.stop()
        smtp.stop()
