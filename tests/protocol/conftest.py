"""Fixtures of the protocol tests beyond the shared ones (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback, verifying every request."""
    found = Receiver().start()
    yield found
    found.close()
