"""The PMI office (``pmi_office``) on a server that sends its notifications
through the loopback fakes (``tests.notifications.fakes``): what the
notification and self-service tests share.  The motif asks the usager to
bring the health record, the organisation has a contact phone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tests.conftest import start_server
from tests.dates import working_monday
from tests.notifications.fakes import SmsProvider, SmtpServer, server_config
from tests.protocol.pmi_office import Office, ok, set_up

INSTRUCTIONS = "Apportez le carnet de santé."
CONTACT_PHONE = "01 40 00 00 00"


@dataclass
class Stack:
    office: Office
    smtp: SmtpServer
    sms: SmsProvider
    day: date  # a working Monday from which the office's plages run


@contextmanager
def notified_office(
    database_url: str,
    workdir: Path,
    fakes: tuple[SmtpServer, SmsProvider],
    motif: dict | None = None,
    organisation: dict | None = None,
) -> Iterator[Stack]:
    """A running server and its office; ``motif`` and ``organisation`` are
    more settings for them."""
    smtp, provider = fakes
    server = start_server(database_url, workdir, extra_config=server_config(smtp, provider))
    try:
        office = set_up(server)
        with office.client() as admin:
            ok(
                admin.patch(
                    f"/organisations/{office.org}/motifs/{office.motif}",
                    json={"instructions_after": INSTRUCTIONS, **(motif or {})},
                )
            )
            ok(
                admin.patch(
                    f"/organisations/{office.org}",
                    json={"contact_phone": CONTACT_PHONE, **(organisation or {})},
                )
            )
        yield Stack(office, smtp, provider, max(working_monday(2), office.day))
    finally:
        server.stop()
