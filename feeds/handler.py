"""GET/HEAD /feeds/<token>.ics: the agent's Webcal feed.

The token is looked up by its SHA-256 (the only form stored); an unknown or
rotated token answers 404 (the same answer, whatever the reason).  Links in
the feed start with the configured base URL, never the request's Host.
Conditional requests are answered from the feed's version alone (a few small
queries): If-None-Match with the strong ETag, else If-Modified-Since, gets a
304 without building the body.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from feeds import builder
from storage import feeds
from storage.database import Database


@dataclass(frozen=True)
class FeedService:
    db: Database
    settings: builder.FeedSettings
    base_url: str
    executor: ThreadPoolExecutor


def _not_modified(request: web.Request, feed: builder.Feed) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:  # RFC 9110 13.2.2: it wins over If-Modified-Since
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or feed.etag in tags
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            parsed = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return feed.last_modified <= int(parsed.timestamp())
    return False


def handler(service: FeedService) -> Callable:
    async def feed(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        base_url = service.base_url

        def answer() -> tuple[builder.Feed, bool, bytes | None] | None:
            with service.db.transaction(write=False) as conn:
                agent = feeds.agent_by_token_hash(conn, feeds.token_hash(token))
                if agent is None:
                    return None
                resolved = builder.resolve(conn, agent, service.settings, base_url)
                if _not_modified(request, resolved):
                    return resolved, True, None
                if request.method == "HEAD":
                    return resolved, False, None
                return resolved, False, builder.body(conn, resolved, service.settings, base_url)

        found = await asyncio.get_running_loop().run_in_executor(service.executor, answer)
        if found is None:
            raise web.HTTPNotFound(text="No feed here.\n")
        resolved, not_modified, payload = found
        headers = {
            "ETag": resolved.etag,
            "Last-Modified": email.utils.formatdate(resolved.last_modified, usegmt=True),
            "Cache-Control": "private, no-cache",
        }
        if not_modified:
            return web.Response(status=304, headers=headers)
        headers["Content-Disposition"] = 'inline; filename="agenda.ics"'
        headers["Content-Type"] = "text/calendar; charset=utf-8"
        return web.Response(body=payload, headers=headers)

    return feed
