"""The pages' foundation over real HTTP: security headers, the session
cookie's flags, CSRF on every form, French error pages without a stack
trace, static files from the package."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calserver.web import site
from calserver.web.errors import PageError
from calserver.web.render import page
from calserver.web.sessions import COOKIE, csrf_token
from calserver.web.throttle import Limit, check
from plugins.auth_throttle import RateLimit
from tests.conftest import Server

PUBLIC = "/prendre-rdv/"


def test_pages_carry_the_security_headers(module_server: Server) -> None:
    answer = httpx.get(module_server.url + PUBLIC + "mon-organisation")
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    assert '<html lang="fr">' in answer.text
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here; https public URLs get it (below)


def test_static_files_come_from_the_package(module_server: Server) -> None:
    answer = httpx.get(module_server.url + "/static/calserver.css")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/css")
    assert "--blue-france" in answer.text
    assert httpx.get(module_server.url + "/static/../app.py").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        PUBLIC + "pas-une-organisation",
        PUBLIC + "MAJUSCULES",
        PUBLIC + "mon-organisation/services/abc",
        PUBLIC + "mon-organisation/services/99999999999999",
        PUBLIC + "mon-organisation/motifs/1/creneaux?semaine=hier",
        PUBLIC + "mon-organisation/motifs/-1",
        PUBLIC + "mon-organisation/nulle-part",
    ],
)
def test_odd_addresses_get_a_french_page_never_a_500(module_server: Server, path: str) -> None:
    answer = httpx.get(module_server.url + path)
    assert answer.status_code in (400, 404)
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Page introuvable" in answer.text or "Demande incorrecte" in answer.text
    assert "Traceback" not in answer.text


# -- in process: the middlewares on a tiny pages app -----------------------------


def _app(secure: bool = False) -> web.Application:
    limit = Limit(RateLimit(10, 60.0), RateLimit(2, 60.0))

    async def form(request: web.Request) -> web.Response:
        return page(request, "error.html", {"status": 200, "title": "Formulaire", "message": ""})

    async def posted(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def token(request: web.Request) -> web.Response:
        return web.Response(text=csrf_token(request))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret personal detail")

    async def limited(request: web.Request) -> web.Response:
        check(request, limit, "the-key")
        return web.Response(text="ok")

    async def refused(request: web.Request) -> web.Response:
        raise PageError(422, "Ce créneau est déjà pris.")

    def routes(app: web.Application) -> None:
        app.router.add_get("/form", form)
        app.router.add_post("/form", posted)
        app.router.add_get("/token", token)
        app.router.add_get("/boom", boom)
        app.router.add_get("/limited", limited)
        app.router.add_get("/refused", refused)

    ctx = site.WebContext(
        db=None,  # type: ignore[arg-type]  # these handlers read no database
        executor=None,  # type: ignore[arg-type]
        base_url="https://rdv.example.fr" if secure else "http://127.0.0.1",
        smtp=None,  # type: ignore[arg-type]
        searches=None,  # type: ignore[arg-type]
        writes=None,  # type: ignore[arg-type]
    )
    root = web.Application()
    root.add_subapp("/p", site.pages_app(ctx, b"k" * 32, routes))
    return root


@contextlib.asynccontextmanager
async def _client(secure: bool = False) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(_app(secure)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_csrf_token_of_the_session_is_accepted_and_others_refused() -> None:
    async with _client() as client:
        token = await (await client.get("/p/token")).text()
        assert (await client.post("/p/form", data={"csrf": token})).status == 200
        altered = token[:-1] + ("1" if token.endswith("0") else "0")
        assert (await client.post("/p/form", data={"csrf": altered})).status == 403
        assert (await client.post("/p/form", data={})).status == 403
    async with _client() as other:  # another session: the token is not its own
        await other.get("/p/token")
        assert (await other.post("/p/form", data={"csrf": token})).status == 403


async def test_errors_are_french_pages_without_detail(caplog: pytest.LogCaptureFixture) -> None:
    async with _client() as client:
        answer = await client.get("/p/boom")
        assert answer.status == 500
        body = await answer.text()
        assert "Erreur de notre côté" in body and "secret personal detail" not in body
        assert "secret personal detail" not in caplog.text
        assert "RuntimeError" in caplog.text
        answer = await client.get("/p/refused")
        assert answer.status == 422 and "Ce créneau est déjà pris." in await answer.text()


async def test_rate_limit_answers_429_with_retry_after() -> None:
    async with _client() as client:
        assert (await client.get("/p/limited")).status == 200
        assert (await client.get("/p/limited")).status == 200
        answer = await client.get("/p/limited")
        assert answer.status == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert "Trop de tentatives" in await answer.text()


async def test_secure_cookie_behind_https() -> None:
    async with _client(secure=True) as client:
        answer = await client.get("/p/form")
        assert "Secure" in answer.headers["Set-Cookie"]
