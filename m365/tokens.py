"""Access tokens, with msal: organisations' application connections and
agents' delegated ones.

One ``ConfidentialClientApplication`` per application connection (tenant,
client id, and a client secret or a certificate: msal then signs a client
assertion with its private key), kept while the connection is unchanged:
msal caches the token until it expires, so Graph calls ask the token
endpoint once an hour.

An agent's delegated connection ("Connecter Outlook") goes through the
server's own app registration (``[m365] delegated_*``): the authorization
code flow with PKCE (``start`` gives msal's flow, whose ``state`` ties the
answer to the browser that started it; ``finish`` redeems the code), then
the refresh token, kept sealed by the caller, buys access tokens
(``refresh``), cached here per agent until they expire.  A 401 from
Graph (a token revoked or expired early) drops the cached token and the next
call gets a fresh one.  An answer that says the credentials themselves are
refused (``invalid_client``, ``invalid_grant``, ``unauthorized_client``)
is ``Refused``: the connection is broken and retrying would not help.

msal is blocking (requests): callers run ``token`` in a thread.  Its HTTP
session trusts ``ca_bundle`` when set (a private authority, the tests' one)
and every request has the configured timeout.

msal and requests (about 40 MiB together) are imported on the first token
asked, not with this module: a server that never talks to Microsoft 365
never loads them.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import msal
    import requests

SCOPES = ["https://graph.microsoft.com/.default"]
# The delegated scope is "Calendars.ReadWrite offline_access", but msal
# refuses the reserved scopes (openid, profile, offline_access) from callers
# and adds them itself to every request.
DELEGATED_SCOPES = ["Calendars.ReadWrite"]
EARLY_S = 120  # an access token is renewed this long before it expires

REFUSALS = frozenset({"invalid_client", "invalid_grant", "unauthorized_client"})


class Refused(Exception):
    """The identity platform refused the credentials: the connection is broken."""


class Unavailable(Exception):
    """No token this time (network, the platform's own trouble): try later."""


class FlowError(Exception):
    """The answer at the redirect URI does not belong to the flow started
    in this browser (another ``state``, or none): possibly forged."""


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    secret: str  # the client secret, or the certificate's private key (PEM)
    certificate: str | None = None  # the public certificate (PEM)

    @property
    def key(self) -> str:
        raw = f"{self.tenant_id}\0{self.client_id}\0{self.secret}\0{self.certificate}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def client_credential(self) -> str | dict[str, str]:
        """msal's form: with a certificate, msal signs a client assertion
        (PS256, its SHA-256 thumbprint in ``x5t#S256``, the chain in ``x5c``)."""
        if self.certificate is None:
            return self.secret
        return {"private_key": self.secret, "public_certificate": self.certificate}


@dataclass(frozen=True)
class Granted:
    """What a delegated grant gave: the account signed in, a fresh refresh
    token (to seal and keep), and an access token."""

    account: str
    refresh_token: str
    access_token: str
    expires_in: int


def _request_error() -> type[Exception]:
    """What requests raises when the platform cannot be reached."""
    import requests

    return requests.RequestException


class _TimedClient:
    """msal's HTTP client: every request with a timeout (requests has none by
    default) and, when configured, the CA bundle (requests lets
    ``REQUESTS_CA_BUNDLE`` win over a session's ``verify``, so it is passed
    on each request)."""

    def __init__(self, timeout_s: float, ca_bundle: str | None) -> None:
        import requests

        self._session = requests.Session()
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        if self.ca_bundle:
            kwargs.setdefault("verify", self.ca_bundle)
        return self._session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("POST", url, **kwargs)

    def close(self) -> None:
        self._session.close()


class TokenSource:
    def __init__(self, authority_url: str, ca_bundle: str | None, timeout_s: float) -> None:
        self.authority_url = authority_url.rstrip("/")
        self.ca_bundle = ca_bundle
        self.timeout_s = timeout_s
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()

    def app(self, credentials: Credentials) -> msal.ConfidentialClientApplication:
        import msal
        from cryptography.exceptions import UnsupportedAlgorithm

        with self._lock:
            app = self._apps.get(credentials.key)
            if app is None:
                try:
                    app = msal.ConfidentialClientApplication(
                        credentials.client_id,
                        client_credential=credentials.client_credential(),
                        authority=f"{self.authority_url}/{credentials.tenant_id}",
                        validate_authority=False,
                        instance_discovery=False,
                        http_client=_TimedClient(self.timeout_s, self.ca_bundle),
                    )
                except ValueError as e:  # the tenant's discovery document is unreachable
                    raise Unavailable(str(e)[:200]) from None
                except (TypeError, UnsupportedAlgorithm) as e:  # an unreadable private key
                    raise Refused(f"unusable certificate or key: {type(e).__name__}") from None
                self._apps[credentials.key] = app
            return app

    def token(self, credentials: Credentials) -> str:
        try:
            answer = self.app(credentials).acquire_token_for_client(scopes=SCOPES)
        except _request_error() as e:
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


class DelegatedTokens:
    """The server's app registration for agents' own connections, and the
    access tokens it holds per agent (in memory, until they expire)."""

    def __init__(self, source: TokenSource, credentials: Credentials) -> None:
        self.source = source
        self.credentials = credentials
        self._cached: dict[tuple[int, int], tuple[str, float]] = {}
        self._agent_locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    def app(self) -> msal.ConfidentialClientApplication:
        return self.source.app(self.credentials)

    def start(self, redirect_uri: str) -> dict[str, Any]:
        """msal's auth code flow (PKCE verifier, ``state``, nonce and the
        ``auth_uri`` to send the browser to): the caller keeps it sealed
        until the browser comes back."""
        # The code comes back in the query, not form_post (msal warns): the
        # flow's cookie is SameSite=Lax, which a cross-site POST would not
        # carry, and a code leaked from a URL is worthless without the PKCE
        # verifier, which only that cookie holds.
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "response_mode='form_post'", UserWarning)
                return self.app().initiate_auth_code_flow(
                    DELEGATED_SCOPES, redirect_uri=redirect_uri, prompt="select_account"
                )
        except _request_error() as e:
            raise Unavailable(type(e).__name__) from None

    def finish(self, flow: dict[str, Any], answer: dict[str, str]) -> Granted:
        """Redeem the code of ``answer`` (the redirect's query) with the
        flow's PKCE verifier; msal checks its ``state`` and nonce."""
        try:
            found = self.app().acquire_token_by_auth_code_flow(flow, answer)
        except ValueError as e:  # msal: another state, or no code
            raise FlowError(str(e)[:150]) from None
        except _request_error() as e:
            raise Unavailable(type(e).__name__) from None
        return self._granted(found)

    def refresh(self, grant: tuple[int, int], refresh_token: str) -> tuple[str, Granted | None]:
        """An access token for the grant (agent id, when it connected): the
        cached one, else one bought with ``refresh_token`` (then the grant,
        whose new refresh token the caller keeps).  One purchase at a time
        per agent; ``Refused`` when the grant is expired or revoked."""
        with self._lock:
            lock = self._agent_locks.setdefault(grant[0], threading.Lock())
        with lock:
            cached = self._cached.get(grant)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0], None
            try:
                found = self.app().acquire_token_by_refresh_token(refresh_token, DELEGATED_SCOPES)
            except _request_error() as e:
                raise Unavailable(type(e).__name__) from None
            granted = self._granted(found, refresh_token)
            self._cached[grant] = (
                granted.access_token,
                time.monotonic() + max(0, granted.expires_in - EARLY_S),
            )
        return granted.access_token, granted

    def forget(self, agent_id: int) -> None:
        """Drop the agent's access tokens (Graph said 401, or it disconnected)."""
        with self._lock:
            for grant in [g for g in self._cached if g[0] == agent_id]:
                self._cached.pop(grant, None)

    @staticmethod
    def _granted(found: dict[str, Any], refresh_token: str | None = None) -> Granted:
        if "access_token" not in found:
            error = str(found.get("error", "unknown"))
            description = str(found.get("error_description", ""))[:150]
            if error in REFUSALS or error in ("access_denied", "consent_required"):
                raise Refused(f"{error}: {description}")
            raise Unavailable(error)
        claims = found.get("id_token_claims") or {}
        account = str(claims.get("preferred_username") or claims.get("upn") or "")
        return Granted(
            account.strip().lower(),
            str(found.get("refresh_token") or refresh_token or ""),
            str(found["access_token"]),
            int(found.get("expires_in") or 3600),
        )
