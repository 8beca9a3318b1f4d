"""A usager's journey over plain HTTP (no browser): what the protocol tests
and the load test drive.  Pages are read as HTML text; forms are posted with
the session's CSRF token, as a browser would."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html import unescape

import httpx

from tests.notifications.fakes import Mailbox

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CODE = re.compile(r"code de confirmation : (\d{6})")
LINK = re.compile(r"(https?://\S+/lien/\S+)")


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return unescape(found.group(1))


def verifications(mailbox: Mailbox, address: str) -> list[EmailMessage]:
    """The verification emails (code and link) this address received; the
    notification worker also sends it the RDV's confirmation."""
    return [m for m in mailbox.to(address) if CODE.search(str(m["Subject"]))]


def code_and_link(message: EmailMessage) -> tuple[str, str]:
    subject = str(message["Subject"])
    code = CODE.search(subject)
    body = message.get_body(("plain",))
    assert code and body is not None
    link = LINK.search(body.get_content())
    assert link, body.get_content()
    return code.group(1), link.group(1)


def identity(**more: str) -> dict[str, str]:
    return {
        "first_name": "Camille",
        "last_name": "Usagère",
        "email": "camille@example.org",
        "phone": "06 12 34 56 78",
        "notify_email": "1",
        "notify_sms": "1",
        **more,
    }


def ask(
    client: httpx.Client, office_url: str, motif: int, slot: str, lieu: int | None, **who: str
) -> httpx.Response:
    """The identity step: GET the form, POST it (answers the redirect, or the page)."""
    query = {"debut": slot, **({"lieu": str(lieu)} if lieu else {})}
    form = client.get(f"{office_url}/motifs/{motif}/identite", params=query)
    assert form.status_code == 200, form.text[:300]
    data = {**identity(**who), **query, "csrf": csrf(form)}
    return client.post(f"{office_url}/motifs/{motif}/identite", data=data)


def type_code(client: httpx.Client, request_url: str, code: str) -> httpx.Response:
    page = client.get(request_url)
    assert page.status_code == 200, page.text[:300]
    return client.post(request_url, data={"code": code, "csrf": csrf(page)})
