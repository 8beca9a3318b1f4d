"""The guarded connection: a name is checked on the addresses it resolves
to, and refusals read as such in the delivery log."""

from __future__ import annotations

import pytest

from webhooks.delivery import AddressRefused, GuardedResolver, send, session
from webhooks.targets import TargetPolicy, networks

STRICT = TargetPolicy(allow_http=True)


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
