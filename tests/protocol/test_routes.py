"""The base URL's other routes: discovery redirect, health, unknown resources."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_PASSWORD, Server


def test_well_known_caldav_redirects_to_dav_root(server: Server) -> None:
    answer = httpx.request("PROPFIND", server.url + "/.well-known/caldav")
    assert answer.status_code == 301
    assert answer.headers["Location"] == "/dav/"


def test_healthz_reports_database(server: Server) -> None:
    answer = httpx.get(server.url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok"}


def test_missing_resources_are_404(server: Server) -> None:
    auth = ("admin", ADMIN_PASSWORD)
    assert httpx.get(server.dav + "admin/agenda/nothing.ics", auth=auth).status_code == 404
    assert httpx.delete(server.dav + "admin/agenda/nothing.ics", auth=auth).status_code == 404
    assert httpx.request("PROPFIND", server.dav + "admin/nowhere/", auth=auth).status_code == 404
