"""The guarded connection: a name is checked on the addresses it resolves
to, and refusals read as such in the delivery log; a redirect fails for
good; an answer's body is read only as far as the excerpt kept."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Answer, Receiver
from webhooks.delivery import EXCERPT_BYTES, AddressRefused, GuardedResolver, send, session
from webhooks.targets import TargetPolicy, networks

STRICT = TargetPolicy(allow_http=True)
LOOPBACK = TargetPolicy(allow_http=True, allowed_networks=networks(["127.0.0.1"]))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.close()


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    resolver = GuardedResolver(STRICT)
    try:
        with pytest.raises(AddressRefused, match="localhost"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    allowing = GuardedResolver(TargetPolicy(True, networks(["127.0.0.1", "::1"])))
    try:
        assert {r["host"] for r in await allowing.resolve("localhost", 80)} <= {
            "127.0.0.1", "::1",
        }  # fmt: skip
    finally:
        await allowing.close()


async def test_refused_targets_are_logged_not_sent() -> None:
    async with session(STRICT) as client:
        by_name = await send(client, STRICT, "http://localhost:9/hook", b"{}", {}, 2)
        by_address = await send(client, STRICT, "http://10.0.0.1/hook", b"{}", {}, 2)
        link_local = await send(client, STRICT, "http://169.254.169.254/", b"{}", {}, 2)
    for outcome in (by_name, by_address, link_local):
        assert not outcome.delivered and outcome.attempt.status_code is None
        assert outcome.attempt.error.startswith("refused target")


async def test_a_redirect_fails_for_good_and_is_not_followed(receiver: Receiver) -> None:
    receiver.answer("/moved", Answer(301, {"Location": receiver.url("/elsewhere")}))
    async with session(LOOPBACK) as client:
        outcome = await send(client, LOOPBACK, receiver.url("/moved"), b"{}", {}, 2)
    assert outcome.permanent and not outcome.delivered and outcome.attempt.status_code == 301
    assert outcome.attempt.error == "answered 301: redirect not followed, given up"
    assert receiver.on("/elsewhere") == []


async def test_a_huge_answer_is_read_only_as_far_as_the_excerpt(receiver: Receiver) -> None:
    """A receiver answering an endless body: the attempt ends at once with
    at most ``EXCERPT_BYTES`` kept; the client hung up instead of reading on."""
    receiver.answer("/huge", Answer(500, endless=True))
    started = time.monotonic()
    async with session(LOOPBACK) as client:
        outcome = await send(client, LOOPBACK, receiver.url("/huge"), b"{}", {}, 5)
    assert time.monotonic() - started < 4  # no timeout: it did not read to the end
    assert outcome.attempt.status_code == 500 and outcome.attempt.error == "answered 500"
    assert outcome.attempt.response_excerpt == "x" * EXCERPT_BYTES
    assert receiver.endless_bytes_written < 64 * 1024 * 1024
