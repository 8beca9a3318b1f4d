"""Fixtures of the protocol tests beyond the shared ones (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.fakes import SmsProvider, SmtpServer, both_running
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback, verifying every request."""
    found = Receiver().start()
    yield found
    found.close()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[SmtpServer, SmsProvider]]:
    """An SMTP server and an SMS provider on loopback for a module's server
    (``tests.protocol.notified_office``)."""
    yield from both_running()
