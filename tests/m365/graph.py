"""A Microsoft Graph stand-in on loopback, over HTTPS with a certificate from
``trustme``: the identity platform's discovery, authorize and token
endpoints (client credentials with a secret or a certificate's signed
client assertion, authorization codes with PKCE, refresh tokens) and the
calendar events of mailboxes kept in memory (``/users/{id}/events``,
``/me/events``, ``$batch`` of up to 20 requests).

It behaves as Graph does where calserver depends on it: a POST carrying a
``transactionId`` already used in that mailbox answers the event it created
then (no duplicate); ``$filter`` on a single-value extended property lists
the events that carry it; unknown ids are 404 ``ErrorItemNotFound``.  A test
can script faults: the next requests answer 429 with ``Retry-After`` or 503,
access tokens expire, a refresh token or an application secret is revoked, a
response is dropped after its request was applied.  Every request is logged
(with its body) so a test can look at what reached Graph.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.conftest import free_port

T = TypeVar("T")


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    mailbox: str | None
    status: int = 0
    in_batch: bool = False  # a request of a $batch


@dataclass
class Fault:
    status: int  # 0: apply the request, then drop the connection without answering
    retry_after: str | None = None
    method: str | None = None  # None: any method on an events URL
    hold_s: float = 0.0  # with status 0: hold the connection this long before dropping it
    batched: bool = False  # only for a request inside a $batch


@dataclass
class Mailbox:
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)


class GraphServer:
    """Start with ``start()``; ``ca_path`` is the CA bundle a client must trust."""

    def __init__(self, directory: Path, latency_s: float = 0.0) -> None:
        self.port = free_port()
        self.latency_s = latency_s
        self.ca = trustme.CA()
        self.ca_path = directory / "graph-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.apps: dict[str, tuple[str, str]] = {}  # client id -> (tenant, secret)
        self.certificates: dict[str, tuple[str, str]] = {}  # client id -> (tenant, PEM)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> mailbox
        self.codes: dict[str, dict[str, str]] = {}  # authorization code -> its request
        self.signing_in: str | None = None  # who signs in at the authorize page
        self.consent = True  # False: the user refuses (error=access_denied)
        self.token_requests: list[dict[str, str]] = []  # forms of the token endpoint
        self.tokens: dict[str, str | None] = {}  # access token -> mailbox (None: application)
        self.mailboxes: dict[str, Mailbox] = {}
        self.log: list[Logged] = []
        self.faults: deque[Fault] = deque()
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self.batches = 0  # $batch requests received
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # -- what a test sets up and looks at -------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def register_app(self, tenant: str, client_id: str, secret: str) -> None:
        self.apps[client_id] = (tenant, secret)

    def revoke_app(self, client_id: str) -> None:
        self.apps.pop(client_id, None)
        self.certificates.pop(client_id, None)

    def register_certificate(self, tenant: str, client_id: str, certificate_pem: str) -> None:
        """An app authenticating with a certificate: its client assertions
        must be signed by this certificate's key."""
        self.certificates[client_id] = (tenant, certificate_pem)

    def sign_in_as(self, mailbox: str | None) -> None:
        """Who the next visits of the authorize page sign in as."""
        self.signing_in = mailbox.lower() if mailbox else None

    def revoke_grants(self, mailbox: str) -> None:
        """The user's sessions are revoked: its refresh tokens and access
        tokens are refused from now on."""
        with self._lock:
            for token in [t for t, m in self.refresh_tokens.items() if m == mailbox.lower()]:
                del self.refresh_tokens[token]
            for token in [t for t, m in self.tokens.items() if m == mailbox.lower()]:
                del self.tokens[token]

    def issue_refresh_token(self, mailbox: str) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = mailbox.lower()
        return token

    def revoke_refresh_token(self, token: str) -> None:
        self.refresh_tokens.pop(token, None)

    def expire_tokens(self) -> None:
        """Every access token handed out so far is refused from now on (401)."""
        with self._lock:
            self.tokens.clear()

    def fail(self, *faults: Fault) -> None:
        """The next requests on events URLs answer these, in order."""
        with self._lock:
            self.faults.extend(faults)

    def events(self, mailbox: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._mailbox(mailbox).events.values())

    def delete_by_hand(self, mailbox: str, event_id: str) -> None:
        with self._lock:
            del self._mailbox(mailbox).events[event_id]

    def edit_by_hand(self, mailbox: str, event_id: str, **fields: Any) -> None:
        with self._lock:
            self._mailbox(mailbox).events[event_id].update(fields)

    def add_by_hand(self, mailbox: str, event: dict[str, Any]) -> str:
        with self._lock:
            event_id = self._new_id()
            self._mailbox(mailbox).events[event_id] = {**event, "id": event_id}
            return event_id

    def requests(self, method: str | None = None) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if method in (None, r.method)]

    # -- the server -------------------------------------------------------------

    def _mailbox(self, name: str) -> Mailbox:
        return self.mailboxes.setdefault(name.lower(), Mailbox())

    @staticmethod
    def _new_id() -> str:
        return "AAMk" + uuid.uuid4().hex

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.url}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
            }
        )

    def _token_answer(
        self,
        mailbox: str | None,
        refresh: bool,
        tenant: str = "",
        client_id: str = "",
        nonce: str | None = None,
    ) -> web.Response:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = mailbox
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": 3600, "access_token": token}
        if refresh and mailbox is not None:
            answer["refresh_token"] = self.issue_refresh_token(mailbox)
            answer["scope"] = "Calendars.ReadWrite openid profile offline_access"
            now = int(time.time())
            claims = {
                "iss": f"{self.url}/{tenant}/v2.0",
                "aud": client_id,
                "sub": hashlib.sha256(mailbox.encode()).hexdigest()[:32],
                "preferred_username": mailbox,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                **({"nonce": nonce} if nonce else {}),
            }
            answer["id_token"] = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")
        return web.json_response(answer)

    def _client_refused(self, tenant: str, form: dict[str, str], endpoint: str) -> str | None:
        """Why the client's authentication fails (None: it passes): a
        secret, or a client assertion signed with the registered certificate."""
        client_id = form.get("client_id", "")
        assertion = form.get("client_assertion")
        if assertion is None:
            if self.apps.get(client_id) != (tenant, form.get("client_secret")):
                return "AADSTS7000215: invalid client secret"
            return None
        known = self.certificates.get(client_id)
        if known is None or known[0] != tenant:
            return "AADSTS700027: no certificate registered for this application"
        if form.get("client_assertion_type") != JWT_BEARER:
            return "AADSTS700027: unexpected client_assertion_type"
        certificate = x509.load_pem_x509_certificate(known[1].encode())
        header = jwt.get_unverified_header(assertion)
        print_ = base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=")
        if str(header.get("x5t#S256", "")).rstrip("=") != print_.decode():  # msal pads it
            return "AADSTS700027: the assertion names another certificate"
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["PS256", "RS256"],
                audience=endpoint,
                issuer=client_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.PyJWTError as e:
            return f"AADSTS700027: client assertion refused ({type(e).__name__})"
        if claims["sub"] != client_id:
            return "AADSTS700027: sub is not the client"
        return None

    async def _authorize(self, request: web.Request) -> web.Response:
        """The sign-in page, already signed in as ``signing_in``: back to the
        redirect URI with a code bound to the PKCE challenge (or an error)."""
        query = dict(request.query)
        tenant = request.match_info["tenant"]
        redirect_uri = query.get("redirect_uri", "")
        wanted = set(query.get("scope", "").split())
        if (
            self.apps.get(query.get("client_id", ""), ("",))[0] != tenant
            or query.get("response_type") != "code"
            or not redirect_uri
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or not {"Calendars.ReadWrite", "offline_access"} <= wanted
        ):
            return web.Response(status=400, text="AADSTS900144: bad authorization request")
        back: dict[str, str] = {"state": query.get("state", "")}
        if not self.consent or self.signing_in is None:
            back.update(error="access_denied", error_description="AADSTS65004: declined")
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "client_id": query["client_id"],
                "redirect_uri": redirect_uri,
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce", ""),
                "mailbox": self.signing_in,
            }
            back["code"] = code
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(back)}")

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        with self._lock:
            self.token_requests.append(form)
        tenant = request.match_info["tenant"]
        grant = form.get("grant_type")
        refused = self._client_refused(tenant, form, f"{self.url}{request.path}")
        if grant == "client_credentials":
            if refused:
                return _oauth_error(401, "invalid_client", refused)
            return self._token_answer(None, refresh=False)
        if grant == "authorization_code":
            if refused:
                return _oauth_error(401, "invalid_client", refused)
            asked = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if (
                asked is None
                or asked["client_id"] != form.get("client_id")
                or asked["redirect_uri"] != form.get("redirect_uri")
                or challenge.rstrip(b"=").decode() != asked["challenge"]
            ):
                return _oauth_error(400, "invalid_grant", "AADSTS70008/501481: code or verifier")
            return self._token_answer(
                asked["mailbox"], True, tenant, asked["client_id"], asked["nonce"] or None
            )
        if grant == "refresh_token":
            if refused:
                return _oauth_error(401, "invalid_client", refused)
            # As Entra: a refresh token stays valid after use (a new one is
            # given beside the access token) until it is revoked.
            mailbox = self.refresh_tokens.get(form.get("refresh_token", ""))
            if mailbox is None:
                return _oauth_error(400, "invalid_grant", "AADSTS70008: refresh token revoked")
            return self._token_answer(mailbox, True, tenant, form.get("client_id", ""))
        return _oauth_error(400, "unsupported_grant_type", "not supported here")

    def _caller(self, request: web.Request) -> tuple[bool, str | None]:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        with self._lock:
            if token not in self.tokens:
                return False, None
            return True, self.tokens[token]

    def _fault_for(self, method: str, in_batch: bool = False) -> Fault | None:
        with self._lock:
            if not self.faults or self.faults[0].method not in (None, method):
                return None
            if self.faults[0].batched and not in_batch:
                return None
            return self.faults.popleft()

    def _enter(self, mailbox: str) -> None:
        with self._lock:
            self.in_flight[mailbox] = self.in_flight.get(mailbox, 0) + 1
            self.most_in_flight[mailbox] = max(
                self.most_in_flight.get(mailbox, 0), self.in_flight[mailbox]
            )

    def _leave(self, mailbox: str) -> None:
        with self._lock:
            self.in_flight[mailbox] -= 1

    async def _events(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        user = request.match_info.get("user")
        logged = Logged(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
            user.lower() if user else None,
        )
        with self._lock:
            self.log.append(logged)
        known, delegated = self._caller(request)
        if not known:
            return _graph_error(logged, 401, "InvalidAuthenticationToken", "token expired")
        mailbox = user or delegated
        if mailbox is None:
            return _graph_error(logged, 400, "BadRequest", "/me needs a delegated token")
        if user and delegated is not None and user.lower() != delegated:
            return _graph_error(logged, 403, "ErrorAccessDenied", "another user's mailbox")
        logged.mailbox = mailbox.lower()
        fault = self._fault_for(request.method)
        self._enter(logged.mailbox)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if fault is not None and fault.status:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return _graph_error(logged, fault.status, "TooManyRequests", "fault", headers)
            status, answer = self._apply(
                logged.mailbox,
                request.method,
                request.match_info.get("id"),
                json.loads(body) if body else None,
                dict(request.query),
            )
            if fault is not None:  # applied, but the caller never hears of it
                await asyncio.sleep(fault.hold_s)
                if request.transport is not None:  # else the caller went away first
                    request.transport.close()
                raise ConnectionResetError("dropped by the test")
            logged.status = status
            if answer is None:
                return web.Response(status=status, headers={"request-id": str(uuid.uuid4())})
            return web.json_response(
                answer, status=status, headers={"request-id": str(uuid.uuid4())}
            )
        finally:
            self._leave(logged.mailbox)

    def _apply(
        self,
        mailbox_name: str,
        method: str,
        event_id: str | None,
        body: dict[str, Any] | None,
        query: dict[str, str],
    ) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            mailbox = self._mailbox(mailbox_name)
            if method == "POST" and event_id is None:
                assert body is not None
                transaction = body.get("transactionId")
                if transaction and transaction in mailbox.transactions:
                    existing = mailbox.events.get(mailbox.transactions[transaction])
                    if existing is not None:
                        return 201, existing
                new_id = self._new_id()
                mailbox.events[new_id] = {**body, "id": new_id}
                if transaction:
                    mailbox.transactions[transaction] = new_id
                return 201, mailbox.events[new_id]
            if method == "GET" and event_id is None:
                return 200, {"value": _filtered(list(mailbox.events.values()), query)}
            if event_id not in mailbox.events:
                return 404, {"error": {"code": "ErrorItemNotFound", "message": "not found"}}
            if method == "GET":
                return 200, mailbox.events[event_id]
            if method == "PATCH":
                assert body is not None
                mailbox.events[event_id].update(body)
                return 200, mailbox.events[event_id]
            if method == "DELETE":
                del mailbox.events[event_id]
                return 204, None
        return 405, {"error": {"code": "BadRequest", "message": method}}

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        """JSON batching as Graph does it: up to 20 requests, each answered
        on its own (status, headers, body), a throttled one with its
        ``Retry-After`` inside; they run side by side, so each counts in its
        mailbox's requests in flight while the batch lasts."""
        known, delegated = self._caller(request)
        with self._lock:
            self.batches += 1
        if not known:
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        asked = (await request.json()).get("requests") or []
        if not 0 < len(asked) <= 20 or len({sub.get("id") for sub in asked}) != len(asked):
            return web.json_response({"error": {"code": "BadRequest"}}, status=400)
        planned = []
        for sub in asked:
            path, _, raw_query = str(sub["url"]).partition("?")
            parts = path.strip("/").split("/")
            user = parts[1].lower() if parts[0] == "users" else None
            body = sub.get("body")
            logged = Logged(
                sub["method"], "/v1.0" + path, dict(parse_qsl(raw_query)), sub.get("headers") or {},
                json.dumps(body).encode() if body is not None else b"", user or delegated, 0, True,
            )  # fmt: skip
            with self._lock:
                self.log.append(logged)
            planned.append((sub, parts, logged, self._fault_for(sub["method"], in_batch=True)))
        for _, _, logged, _ in planned:
            if logged.mailbox:
                self._enter(logged.mailbox)
        answers = []
        dropped = None
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            for sub, parts, logged, fault in planned:
                headers: dict[str, str] = {"Content-Type": "application/json"}
                if logged.mailbox is None or (
                    parts[0] == "users" and delegated is not None and logged.mailbox != delegated
                ):
                    status, body = 403, {"error": {"code": "ErrorAccessDenied", "message": "no"}}
                elif fault is not None and fault.status:
                    status = fault.status
                    body = {"error": {"code": "TooManyRequests", "message": "fault"}}
                    if fault.retry_after:
                        headers["Retry-After"] = fault.retry_after
                else:
                    event_id = parts[-1] if parts[-1] != "events" else None
                    status, body = self._apply(
                        logged.mailbox, sub["method"], event_id, sub.get("body"), logged.query
                    )
                    dropped = dropped or fault
                logged.status = status
                answer = {"id": sub["id"], "status": status, "headers": headers}
                if body is not None:
                    answer["body"] = body
                answers.append(answer)
            if dropped is not None:  # applied, but the caller never hears of it
                await asyncio.sleep(dropped.hold_s)
                if request.transport is not None:
                    request.transport.close()
                raise ConnectionResetError("dropped by the test")
        finally:
            for _, _, logged, _ in planned:
                if logged.mailbox:
                    self._leave(logged.mailbox)
        return web.json_response({"responses": answers}, headers={"request-id": str(uuid.uuid4())})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        for prefix in ("/v1.0/users/{user}", "/v1.0/me"):
            app.router.add_route("*", prefix + "/events", self._events)
            app.router.add_route("*", prefix + "/events/{id}", self._events)
        app.router.add_post("/v1.0/$batch", self._batch)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()

    def start(self) -> GraphServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def wait(self, check: Callable[[], T], timeout: float = 15.0) -> T:
        """Poll ``check`` until it answers something true; that answer."""
        deadline = time.monotonic() + timeout
        while not (found := check()):
            assert time.monotonic() < deadline, "timed out waiting on the Graph server"
            time.sleep(0.05)
        return found


def _filtered(found: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ...)``:
    the events carrying that property (the one filter calserver sends)."""
    wanted = query.get("$filter", "")
    if "singleValueExtendedProperties/Any" not in wanted:
        return found
    property_id = wanted.split("ep/id eq '", 1)[1].split("'", 1)[0]
    return [
        e
        for e in found
        if any(p.get("id") == property_id for p in e.get("singleValueExtendedProperties", []))
    ]


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _oauth_error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


def _graph_error(
    logged: Logged, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    logged.status = status
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers or {}
    )
