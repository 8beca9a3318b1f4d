"""A browser without JavaScript for page tests: one httpx client with its
own cookies, coming from its own loopback address (127.0.0.x), so that the
pages' per-address rate limits count each test's visitor apart."""

from __future__ import annotations

import html
import itertools
import re

import httpx

from tests.conftest import Server

_ADDRESSES = (f"127.0.{b}.{c}" for b, c in itertools.product(range(1, 250), range(2, 250)))
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def new_address() -> str:
    return next(_ADDRESSES)


class Visitor:
    def __init__(self, server: Server, address: str | None = None) -> None:
        self.address = address or new_address()
        self.client = httpx.Client(
            base_url=server.url,
            transport=httpx.HTTPTransport(local_address=self.address),
            follow_redirects=False,
            timeout=30,
        )
        self.csrf = ""

    def __enter__(self) -> Visitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str, **kw: object) -> httpx.Response:
        answer = self.client.get(path, **kw)  # type: ignore[arg-type]
        found = _CSRF.search(answer.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return answer

    def post(
        self, path: str, data: dict[str, str] | None = None, csrf: str | None = None
    ) -> httpx.Response:
        form = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        answer = self.client.post(path, data=form)
        found = _CSRF.search(answer.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return answer


def text_of(answer: httpx.Response) -> str:
    """A page's text without tags, entities decoded, spaces collapsed."""
    stripped = re.sub(r"<[^>]+>", " ", answer.text)
    return " ".join(html.unescape(stripped).split())
