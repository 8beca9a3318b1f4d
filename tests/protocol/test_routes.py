"""The base URL's other routes: discovery redirect, health, unknown resources.

They only read, so they share one server per database (``module_server``)."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_PASSWORD, Server


def test_well_known_caldav_redirects_to_dav_root(module_server: Server) -> None:
    answer = httpx.request("PROPFIND", module_server.url + "/.well-known/caldav")
    assert answer.status_code == 301
    assert answer.headers["Location"] == "/dav/"


def test_healthz_reports_database(module_server: Server) -> None:
    answer = httpx.get(module_server.url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok"}


def test_missing_resources_are_404(module_server: Server) -> None:
    auth = ("admin", ADMIN_PASSWORD)
    assert httpx.get(module_server.dav + "admin/agenda/nothing.ics", auth=auth).status_code == 404
    assert (
        httpx.delete(module_server.dav + "admin/agenda/nothing.ics", auth=auth).status_code == 404
    )
    assert (
        httpx.request("PROPFIND", module_server.dav + "admin/nowhere/", auth=auth).status_code
        == 404
    )
