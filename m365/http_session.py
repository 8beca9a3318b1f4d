"""The HTTP session msal uses for the identity platform (see ``m365.tokens``)."""

from __future__ import annotations

from typing import Any

import requests


class TimedSession(requests.Session):
    """Every request with a timeout (requests has none by default) and, when
    configured, the CA bundle: requests lets ``REQUESTS_CA_BUNDLE`` win over a
    session's ``verify``, so it is passed on each request."""

    def __init__(self, timeout_s: float, ca_bundle: str | None) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        if self.ca_bundle:
            kwargs.setdefault("verify", self.ca_bundle)
        return super().request(method, url, *args, **kwargs)
