"""The server is busy while it answers a request, and quiet a moment after."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calserver.in_flight import QUIET_S, InFlight


async def test_busy_while_answering_quiet_after() -> None:
    in_flight = InFlight()
    seen: list[bool] = []

    async def handler(_request: web.Request) -> web.Response:
        seen.append(in_flight.busy())
        return web.Response(text="ok")

    app = web.Application(middlewares=[in_flight.middleware])
    app.router.add_get("/", handler)
    assert not in_flight.busy()
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/")).status == 200
        assert seen == [True]
        await asyncio.sleep(QUIET_S * 2)
        assert not in_flight.busy()
