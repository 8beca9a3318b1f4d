"""The pages' sub-applications and what they share.

``WebContext`` is what every page handler reaches through ``context(request)``:
the database, the thread pools blocking work runs on (reads, searches,
writes), the public URL, SMTP settings and the rate limits.  ``pages_app``
makes a sub-application with the pages' middlewares (security headers,
French error pages, session and CSRF) and the shared keys; each feature
(``calserver.web.booking``, the self-service page...) adds its routes to one
and ``calserver.app`` mounts it under its prefix.
The stylesheet and other static files are served from ``/static/``, from the
package itself (``calserver/web/static``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from calserver.blocking import Transactions
from calserver.web.errors import error_pages
from calserver.web.headers import security_headers
from calserver.web.render import TEMPLATES, environment
from calserver.web.sessions import POLICY, CookiePolicy, sessions
from calserver.web.throttle import LIMITS, PageLimits
from notifications.email import SmtpSettings
from storage import server_keys
from storage.database import Database

T = TypeVar("T")
STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
SESSION_KEY_NAME = "web-session"


@dataclass
class WebContext(Transactions):
    db: Database
    executor: ThreadPoolExecutor
    base_url: str
    smtp: SmtpSettings
    # Searches (créneaux) run on the API's search pool: however many usagers
    # look at once, the other requests keep their threads.
    searches: ThreadPoolExecutor
    # Writes run on their own threads: a write waits for the database's write
    # lock (one writer at a time on SQLite), and a crowd of bookings waiting
    # there must not hold the threads that read the other pages.
    writes: ThreadPoolExecutor
    limits: PageLimits = field(default_factory=PageLimits)
    templates: jinja2.Environment = field(default_factory=environment)

    async def search(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.searches, fn, *args)

    async def writing(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` (``self.write`` and its function, or one that writes)
        on the write threads."""
        return await asyncio.get_running_loop().run_in_executor(self.writes, fn, *args)


CONTEXT = web.AppKey("web_context", WebContext)


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def session_key(db: Database) -> bytes:
    """The key that signs session cookies and CSRF tokens, shared by every
    process through the database."""
    with db.transaction(write=True) as conn:
        return server_keys.key(conn, SESSION_KEY_NAME)


def pages_app(
    ctx: WebContext, key: bytes, add_routes: Callable[[web.Application], None]
) -> web.Application:
    """A sub-application of pages with the shared middlewares and context."""
    app = web.Application(middlewares=[security_headers, error_pages, sessions])
    app[CONTEXT] = ctx
    app[TEMPLATES] = ctx.templates
    app[LIMITS] = ctx.limits
    app[POLICY] = CookiePolicy(key, ctx.base_url.startswith("https://"))
    add_routes(app)
    return app


def add_static(app: web.Application) -> None:
    app.router.add_static("/", STATIC, follow_symlinks=False, append_version=False)
