"""sync-collection with DAV:limit (RFC 6578 §3.7), which stock Radicale ignores."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import httpx

from tests.conftest import ADMIN_PASSWORD, Server
from tests.ics import event

AUTH = ("admin", ADMIN_PASSWORD)
BODY = (
    '<sync-collection xmlns="DAV:"><sync-token>{token}</sync-token><sync-level>1</sync-level>'
    "{limit}<prop><getetag/></prop></sync-collection>"
)


def _sync(server: Server, token: str, limit: int | None) -> tuple[str, list[str], bool]:
    limit_xml = f"<limit><nresults>{limit}</nresults></limit>" if limit else ""
    answer = httpx.request(
        "REPORT",
        server.dav + "admin/agenda/",
        auth=AUTH,
        content=BODY.format(token=token, limit=limit_xml),
    )
    assert answer.status_code == 207
    root = ET.fromstring(answer.content)
    items, truncated = [], False
    for response in root.iter("{DAV:}response"):
        if response.findtext("{DAV:}status") == "HTTP/1.1 507 Insufficient Storage":
            assert response.findtext("{DAV:}href") == "/dav/admin/agenda/"
            truncated = True
        else:
            items.append(response.findtext("{DAV:}href"))
    return root.findtext("{DAV:}sync-token"), items, truncated


def test_limited_sync_pages_through_every_change_once(server: Server) -> None:
    with httpx.Client(auth=AUTH) as client:
        for n in range(7):
            body = event(f"s{n}", datetime(2027, 1, 4, 9, 0) + timedelta(days=n))
            assert (
                client.put(
                    server.dav + f"admin/agenda/s{n}.ics",
                    content=body.encode(),
                    headers={"Content-Type": "text/calendar"},
                ).status_code
                == 201
            )
    seen: list[str] = []
    token, pages = "", 0
    while True:
        token, items, truncated = _sync(server, token, 3)
        assert len(items) <= 3
        seen += items
        pages += 1
        if not truncated:
            break
    assert pages == 3
    assert sorted(seen) == [f"/dav/admin/agenda/s{n}.ics" for n in range(7)]
    assert _sync(server, token, 3)[1:] == ([], False)
