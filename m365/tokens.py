"""Access tokens of organisations' application connections, with msal.

One ``ConfidentialClientApplication`` per connection (tenant, client id,
secret), kept while the connection is unchanged: msal caches the token until
it expires, so Graph calls ask the token endpoint once an hour.  A 401 from
Graph (a token revoked or expired early) drops the cached token and the next
call gets a fresh one.  An answer that says the credentials themselves are
refused (``invalid_client``, ``invalid_grant``, ``unauthorized_client``)
is ``Refused``: the connection is broken and retrying would not help.

msal is blocking (requests): callers run ``token`` in a thread.  Its HTTP
session trusts ``ca_bundle`` when set (a private authority, the tests' one)
and every request has the configured timeout (``m365.http_session``).  msal
and requests are imported when a first token is asked for: a server without
Microsoft 365 connections never loads them (about 8 MiB).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import msal

SCOPES = ["https://graph.microsoft.com/.default"]
REFUSALS = frozenset({"invalid_client", "invalid_grant", "unauthorized_client"})


class Refused(Exception):
    """The identity platform refused the credentials: the connection is broken."""


class Unavailable(Exception):
    """No token this time (network, the platform's own trouble): try later."""


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    secret: str

    @property
    def key(self) -> str:
        raw = f"{self.tenant_id}\0{self.client_id}\0{self.secret}"
        return hashlib.sha256(raw.encode()).hexdigest()


class TokenSource:
    def __init__(self, authority_url: str, ca_bundle: str | None, timeout_s: float) -> None:
        self.authority_url = authority_url.rstrip("/")
        self.ca_bundle = ca_bundle
        self.timeout_s = timeout_s
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()

    def _app(self, credentials: Credentials) -> msal.ConfidentialClientApplication:
        import msal

        from m365.http_session import TimedSession

        with self._lock:
            app = self._apps.get(credentials.key)
            if app is None:
                try:
                    app = msal.ConfidentialClientApplication(
                        credentials.client_id,
                        client_credential=credentials.secret,
                        authority=f"{self.authority_url}/{credentials.tenant_id}",
                        validate_authority=False,
                        instance_discovery=False,
                        http_client=TimedSession(self.timeout_s, self.ca_bundle),
                    )
                except ValueError as e:  # the tenant's discovery document is unreachable
                    raise Unavailable(str(e)[:200]) from None
                self._apps[credentials.key] = app
            return app

    def token(self, credentials: Credentials) -> str:
        import requests

        try:
            answer = self._app(credentials).acquire_token_for_client(scopes=SCOPES)
        except requests.RequestException as e:
            raise Unavailable(type(e).__name__) from None
        if "access_token" in answer:
            return answer["access_token"]
        error = str(answer.get("error", "unknown"))
        if error in REFUSALS:
            # msal would answer the same refusal from its throttle for a while:
            # a connection set again starts from a new application.
            with self._lock:
                self._apps.pop(credentials.key, None)
            raise Refused(f"{error}: {str(answer.get('error_description', ''))[:150]}")
        raise Unavailable(error)

    def forget_token(self, credentials: Credentials) -> None:
        """Drop the cached access token (Graph said 401): the next ``token``
        asks the platform again."""
        with self._lock:
            app = self._apps.get(credentials.key)
        if app is None:
            return
        import msal

        cache = app.token_cache
        for found in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(found)
