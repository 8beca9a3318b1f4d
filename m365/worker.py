"""The push worker: from the outbox to the agents' Outlook calendars.

One loop per worker process, beside the webhook worker (``calserver serve``
runs one in process, ``calserver worker`` one alone).  Each turn, in one
short write transaction, it marks dirty the links of the RDVs the outbox
told of (``storage.m365.collect``) and claims due dirty links (leased).
Each claimed link is synced on its own task: a read transaction says what
the RDV is now (the feed's whitelist type, so no usager data), then the
Graph calls that make the mailbox agree (DELETE when the RDV is gone,
cancelled or changed mailbox; PATCH when its digest differs; POST with a
``transactionId`` derived from the RDV when there is no event; a 404 on
PATCH recreates), then one write transaction keeps the event's id and
digest and the sync log.  No transaction is open while a request is on the
wire; at most four requests are in flight per mailbox (``GraphClient``).

Graph's 429 and 503 are retried after their ``Retry-After``, other
failures with a doubling delay; a refused credential marks the
organisation's connection broken, which stops its links from being claimed
until an admin sets the connection again.

``reconcile`` lists our events in an agent's mailbox (by the extended
property) and repairs drift through the same sync: an event of a live RDV
is adopted with the digest of what the mailbox holds (a hand edit then
reads as a difference and is patched back), a live RDV without an event is
recreated, and an event of ours that is no RDV any more is deleted.  An
event of a live RDV of the same agent in another organisation is left to
that organisation's reconciliation (an agent of several organisations has
them all in its one mailbox).  The
worker reconciles every connected agent every ``reconcile_every_s``;
``calserver m365-reconcile`` does it on demand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from feeds.builder import rdv_event
from m365 import event as graph_event
from m365.graph import Answer, GraphClient, ssl_context
from m365.secrets import SecretBox, SecretError
from m365.tokens import Credentials, DelegatedTokens, Refused, TokenSource, Unavailable
from storage import feeds, scheduling, wakeup
from storage import m365 as repository
from storage.database import Database
from storage.outbox import now_ms

log = logging.getLogger("calserver.m365")
UID_SUFFIX = "@calserver"  # an RDV's UID is its public id and this
DAY_MS = 86_400_000


@dataclass(frozen=True)
class PushSettings:
    """What ``[m365]`` says (``calserver.app.push_settings``; the defaults are
    config.ini's), and the limits config.ini does not expose."""

    box: SecretBox
    base_url: str
    authority_url: str
    graph_url: str
    ca_bundle: str | None
    timeout_s: float
    poll_s: float
    retry_first_ms: int
    past_days: int
    ahead_days: int
    reconcile_every_s: float
    keep_log_days: int
    batch: int = 100  # links synced at once by one worker
    retry_max_ms: int = 3_600_000
    reconcile_at_start: bool = True  # else first after reconcile_every_s
    # The server's app registration for agents' own connections (``[m365]
    # delegated_*``); None: agents cannot connect their Outlook.
    delegated: Credentials | None = None
    batching: bool = True  # calls of one token close together leave as a $batch

    @property
    def lease_ms(self) -> int:
        """A sync makes at most three calls (and a token request) in a row;
        past the lease another worker may take the link again."""
        return int((4 * self.timeout_s + 5) * 1000)


@dataclass(frozen=True)
class Route:
    """How one mailbox is reached: through the organisation's application
    (``credentials``, ``/users/{mailbox}``) or through an agent's own
    delegated connection (``agent_id`` and its sealed refresh token, ``/me``).
    An agent with a delegation (ok or broken) is pushed through it only: it
    chose its own Outlook, which may not be the mailbox of its email."""

    organisation_id: int
    mailbox: str
    credentials: Credentials | None = None
    agent_id: int | None = None
    refresh_token: str | None = None
    connected_ms: int = 0  # delegated: which grant (a new one after connecting again)

    @property
    def me(self) -> bool:
        return self.agent_id is not None


@dataclass
class Plan:
    """What one link's sync works from, read in one transaction."""

    route: Route | None  # None: the mailbox cannot be reached now (wait)
    mailbox: str | None  # None: the agent has no mailbox (nothing to push)
    zone: str
    body: dict[str, Any] | None  # the event the RDV should be; None: no event
    old: Route | None = None  # where the event to delete is, when elsewhere


@dataclass
class Outcome:
    mailbox: str | None
    graph_id: str | None
    pushed: str | None
    generation: int
    retry_at_ms: int | None = None


class Broken(Exception):
    """The organisation's connection was refused: marked broken."""


class Pusher:
    def __init__(self, db: Database, settings: PushSettings) -> None:
        self.db = db
        self.settings = settings
        self.tokens = TokenSource(settings.authority_url, settings.ca_bundle, settings.timeout_s)
        self.delegated = (
            DelegatedTokens(self.tokens, settings.delegated) if settings.delegated else None
        )
        self.synced = 0  # links synced since it started
        self._wake = asyncio.Event()
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_reconcile = 0.0 if settings.reconcile_at_start else settings.reconcile_every_s
        self._seen: list[int] = []  # events marked, past a cursor held back by a gap

    # -- one link ------------------------------------------------------------------

    def _credentials(self, conn: Any, organisation_id: int) -> Credentials | None:
        found = repository.connection(conn, organisation_id)
        if found is None or found["state"] != repository.OK:
            return None
        try:
            secret = self.settings.box.open(found["secret"])
        except SecretError:
            repository.mark_broken(
                conn, organisation_id, "the secret was stored with another key", now_ms()
            )
            return None
        return Credentials(found["tenant_id"], found["client_id"], secret, found["certificate"])

    def _route(
        self, conn: Any, agent_id: int, organisation_id: int
    ) -> tuple[Route | None, str | None, str]:
        """(route, mailbox, zone) of the agent's events: its delegation's
        account when it has one (no route while it is broken, or when this
        server takes no delegation), else its email through the
        organisation's connection."""
        email, zone = repository.mailbox_and_zone(conn, agent_id, organisation_id)
        own = repository.delegation(conn, agent_id)
        if own is not None:
            if own["state"] != repository.OK or self.delegated is None:
                return None, own["account"], zone
            route = Route(
                organisation_id, own["account"], None, agent_id, own["refresh_token"],
                own["connected_ms"],
            )  # fmt: skip
            return route, own["account"], zone
        credentials = self._credentials(conn, organisation_id)
        if credentials is None or email is None:
            return None, email, zone
        return Route(organisation_id, email, credentials), email, zone

    def _reach(self, conn: Any, mailbox: str, organisation_id: int) -> Route | None:
        """A way into ``mailbox`` (where an event to delete was left): an
        agent's ok delegation signed in as it, else the organisation's app."""
        own = repository.delegation_of_account(conn, mailbox)
        if own is not None and self.delegated is not None:
            return Route(
                organisation_id, mailbox, None, own["agent_id"], own["refresh_token"],
                own["connected_ms"],
            )  # fmt: skip
        credentials = self._credentials(conn, organisation_id)
        return None if credentials is None else Route(organisation_id, mailbox, credentials)

    def _plans(self, links: list[repository.Link]) -> list[Plan]:
        """What each link's sync works from, read in one transaction: the
        syncs of one round then call Graph together (and share ``$batch``es)."""
        with self.db.transaction(write=True) as conn:
            live = feeds.live_rdvs(conn, [link.item_id for link in links])
            return [self._plan(conn, link, live.get(link.item_id)) for link in links]

    def _plan(self, conn: Any, link: repository.Link, live: Any) -> Plan:
        route, mailbox, body = None, None, None
        if live is None:
            _, zone = repository.mailbox_and_zone(conn, link.agent_id, link.organisation_id)
        else:
            agent_id, rdv = live
            organisation_id = rdv.organisation_id or link.organisation_id
            route, mailbox, zone = self._route(conn, agent_id, organisation_id)
            if mailbox is not None:
                motifs = {m["id"]: m for m in scheduling.motifs_of(conn, organisation_id)}
                lieux = {lo["id"]: lo for lo in scheduling.lieux_of(conn, organisation_id)}
                found = rdv_event(conn, rdv, motifs, lieux, self.settings.base_url)
                body = graph_event.graph_event(found, zone)
        old = None
        if link.graph_id and link.mailbox and (body is None or link.mailbox != mailbox):
            old = (
                route
                if route is not None and route.mailbox == link.mailbox
                else self._reach(conn, link.mailbox, link.organisation_id)
            )
        return Plan(route, mailbox, zone, body, old)

    async def _token(self, route: Route) -> str:
        if route.credentials is None:
            return await asyncio.to_thread(self._delegated_token, route)
        try:
            return await asyncio.to_thread(self.tokens.token, route.credentials)
        except Refused as e:
            await asyncio.to_thread(self._break, route.organisation_id, str(e))
            raise Broken(str(e)) from None

    def _delegated_token(self, route: Route) -> str:
        """The agent's access token; one bought with its refresh token keeps
        the new refresh token (sealed).  A grant refused (expired, revoked)
        breaks the delegation: its token is deleted, its links wait."""
        assert self.delegated is not None and route.agent_id is not None
        try:
            refresh = self.settings.box.open(route.refresh_token or "")
            grant = (route.agent_id, route.connected_ms)
            token, granted = self.delegated.refresh(grant, refresh)
        except (SecretError, Refused) as e:
            reason = "stored with another key" if isinstance(e, SecretError) else str(e)
            self._break_delegation(route.agent_id, route.connected_ms, reason)
            raise Broken(reason) from None
        if granted is not None and granted.refresh_token != refresh:
            sealed = self.settings.box.seal(granted.refresh_token)
            with self.db.transaction(write=True) as conn:
                repository.renew_delegation(
                    conn, route.agent_id, route.refresh_token or "", sealed, now_ms()
                )
        return token

    def _break_delegation(self, agent_id: int, connected_ms: int, reason: str) -> None:
        assert self.delegated is not None
        self.delegated.forget(agent_id)
        with self.db.transaction(write=True) as conn:
            repository.break_delegation(conn, agent_id, connected_ms, reason, now_ms())
        log.warning("m365 delegated connection of agent %s broken: %s", agent_id, reason)

    def _forget_token(self, route: Route) -> None:
        if route.credentials is not None:
            self.tokens.forget_token(route.credentials)
        elif self.delegated is not None and route.agent_id is not None:
            self.delegated.forget(route.agent_id)

    def _break(self, organisation_id: int, reason: str) -> None:
        with self.db.transaction(write=True) as conn:
            repository.mark_broken(conn, organisation_id, reason, now_ms())
        log.warning("m365 connection of organisation %s broken: %s", organisation_id, reason)

    async def _call(
        self,
        client: GraphClient,
        link: repository.Link,
        route: Route,
        logged: list[repository.LogEntry],
        operation: str,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
    ) -> Answer:
        """One Graph call, logged; a 401 gets a fresh token and one more try."""
        for fresh in (False, True):
            if fresh:
                self._forget_token(route)
            try:
                token = await self._token(route)
            except Unavailable as e:
                answer = Answer(None, None, None, None, 0, f"no token: {e}")
            else:
                answer = await client.call(token, route.mailbox, method, url, body)
            logged.append(self._entry(link, operation, answer))
            if answer.status != 401:
                break
        return answer

    @staticmethod
    def _entry(link: repository.Link, operation: str, answer: Answer) -> repository.LogEntry:
        return repository.LogEntry(
            link.agent_id, link.item_id or None, now_ms() - answer.duration_ms, operation,
            answer.status, answer.duration_ms, answer.request_id, answer.error,
        )  # fmt: skip

    def _later(self, link: repository.Link, answer: Answer) -> int:
        if answer.retry_after_ms is not None:
            return now_ms() + answer.retry_after_ms
        delay = self.settings.retry_first_ms * 2 ** min(link.attempts, 20)
        return now_ms() + min(self.settings.retry_max_ms, delay)

    async def sync(
        self,
        client: GraphClient,
        link: repository.Link,
        logged: list[repository.LogEntry],
        plan: Plan | None = None,
    ) -> Outcome:
        """Make the mailbox agree with what the RDV is now (``plan``, read
        here when not given)."""
        if plan is None:
            (plan,) = await asyncio.to_thread(self._plans, [link])
        done = Outcome(link.mailbox, link.graph_id, link.pushed, link.generation)
        if done.graph_id and done.mailbox and (plan.body is None or done.mailbox != plan.mailbox):
            if plan.old is None:  # no way into that mailbox any more: left there
                logged.append(
                    self._entry(link, "delete", Answer(None, None, None, None, 0, "unreachable"))
                )
            else:
                answer = await _Caller(self, client, link, plan.old, logged)(
                    "delete", "DELETE", done.graph_id
                )
                # 403: that mailbox is not the app's (an agent's own account
                # of another tenant, once disconnected): the event stays there.
                if answer.status not in (200, 204, 403, 404):
                    done.retry_at_ms = self._later(link, answer)
                    return done
            # A later event of this RDV is a new one: a new transactionId
            # (Graph may still know the old one for the deleted event).
            done.graph_id, done.pushed, done.generation = None, None, done.generation + 1
        if plan.body is None or plan.mailbox is None:
            return done
        if plan.route is None:  # the connection is gone or broken: when it is set again
            done.retry_at_ms = now_ms() + self.settings.retry_max_ms
            return done
        call = _Caller(self, client, link, plan.route, logged)
        wanted = graph_event.digest(plan.body)
        if done.graph_id and done.pushed != wanted:
            answer = await call("update", "PATCH", done.graph_id, plan.body)
            if answer.status == 404:  # deleted by hand: made again
                done.graph_id, done.generation = None, done.generation + 1
            elif answer.status == 200:
                done.pushed = wanted
            else:
                done.retry_at_ms = self._later(link, answer)
                return done
        if done.graph_id is None:
            transaction = graph_event.transaction_id(link.item_id, plan.mailbox, done.generation)
            body = {**plan.body, "transactionId": transaction}
            answer = await call("create", "POST", None, body)
            if answer.status not in (200, 201) or not answer.body or "id" not in answer.body:
                done.retry_at_ms = self._later(link, answer)
                return done
            done.mailbox, done.graph_id, done.pushed = plan.mailbox, answer.body["id"], wanted
        return done

    def _finish(
        self, link: repository.Link, outcome: Outcome, logged: list[repository.LogEntry]
    ) -> None:
        with self.db.transaction(write=True) as conn:
            repository.finish(
                conn,
                link,
                mailbox=outcome.mailbox,
                graph_id=outcome.graph_id,
                pushed=outcome.pushed,
                generation=outcome.generation,
                retry_at_ms=outcome.retry_at_ms,
                now=now_ms(),
            )
            repository.write_log(conn, logged)

    async def push(
        self, client: GraphClient, link: repository.Link, plan: Plan | None = None
    ) -> None:
        logged: list[repository.LogEntry] = []
        try:
            outcome = await self.sync(client, link, logged, plan)
        except Broken:
            outcome = Outcome(link.mailbox, link.graph_id, link.pushed, link.generation, now_ms())
        await asyncio.to_thread(self._finish, link, outcome, logged)
        self.synced += 1

    # -- reconciliation -------------------------------------------------------------

    def _window(self, zone: str) -> tuple[int, int]:
        today = datetime.now(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
        first = today - timedelta(days=self.settings.past_days)
        last = today + timedelta(days=self.settings.ahead_days)
        return int(first.timestamp()), int(last.timestamp())

    def _expected(
        self, agent_id: int, organisation_id: int
    ) -> tuple[Route | None, str, dict[str, int]]:
        """The way into the agent's mailbox and its live RDVs in the window,
        by our UID."""
        with self.db.transaction(write=True) as conn:
            route, _, zone = self._route(conn, agent_id, organisation_id)
            start, end = self._window(zone)
            live = {
                f"{r.public_id}{UID_SUFFIX}": r.item_id
                for r in feeds.rdvs(conn, agent_id, start, end)
                if r.organisation_id in (None, organisation_id)
            }
        return route, zone, live

    def _elsewhere(self, agent_id: int, organisation_id: int, uids: set[str]) -> set[str]:
        """Of these UIDs, those of the agent's live RDVs (any date) in another
        organisation.  An agent of several organisations has the RDVs of all
        of them pushed into its one mailbox, and each organisation reconciles
        its own: to this one such an event is neither a stray to delete nor an
        event to adopt, else the reconciliations would delete each other's
        events and recreate them in turn (gone from Outlook in between)."""
        public = {u.removesuffix(UID_SUFFIX): u for u in uids if u.endswith(UID_SUFFIX)}
        with self.db.transaction(write=False) as conn:
            found = feeds.organisations_of_rdvs(conn, agent_id, public)
        return {public[p] for p, org in found.items() if org not in (None, organisation_id)}

    async def reconcile(self, client: GraphClient, agent_id: int, organisation_id: int) -> dict:
        """Repair one agent's mailbox; what was found and done."""
        route, zone, live = await asyncio.to_thread(self._expected, agent_id, organisation_id)
        report: dict[str, Any] = {"agent_id": agent_id, "events": 0, "deleted": 0, "missing": 0}
        if route is None:
            return report
        mailbox = route.mailbox
        try:
            token = await self._token(route)
        except Unavailable as e:
            report["error"] = f"no token: {e}"
            return report
        found, answer = await client.our_events(token, mailbox, zone, me=route.me)
        link = repository.Link(0, agent_id, organisation_id, mailbox, None, None, 0, 0, 0)
        logged = [self._entry(link, "list", answer)]
        if found is None:
            await asyncio.to_thread(
                self._repair, agent_id, organisation_id, mailbox, [], {}, logged
            )
            report["error"] = answer.status or answer.error
            return report
        report["events"] = len(found)
        unknown = {uid for e in found if (uid := graph_event.uid_of(e) or "") not in live}
        elsewhere = await asyncio.to_thread(self._elsewhere, agent_id, organisation_id, unknown)
        seen: dict[int, dict[str, Any]] = {}
        strays = []
        for remote in found:
            uid = graph_event.uid_of(remote) or ""
            if uid in elsewhere:  # another organisation's RDV: its reconciliation's
                continue
            item_id = live.get(uid)
            if item_id is None or item_id in seen:  # not an RDV (any more), or a duplicate
                strays.append(remote["id"])
            else:
                seen[item_id] = remote
        # At once: four at a time in the mailbox, in $batch requests when many.
        call = _Caller(self, client, link, route, logged)
        deleted = await asyncio.gather(*(call("reconcile", "DELETE", e) for e in strays))
        report["deleted"] = sum(answer.status in (200, 204, 404) for answer in deleted)
        missing = [i for i in live.values() if i not in seen]
        await asyncio.to_thread(
            self._repair, agent_id, organisation_id, mailbox, missing, seen, logged
        )
        report["missing"] = len(missing)
        return report

    def _repair(
        self,
        agent_id: int,
        organisation_id: int,
        mailbox: str,
        missing: list[int],
        seen: dict[int, dict[str, Any]],
        logged: list[repository.LogEntry],
    ) -> None:
        now = now_ms()
        with self.db.transaction(write=True) as conn:
            repository.write_log(conn, logged)
            repository.mark_dirty(
                conn, [(i, agent_id, organisation_id) for i in missing], now, recreate_in=mailbox
            )
            repository.mark_dirty(conn, [(i, agent_id, organisation_id) for i in seen], now)
            for item_id, remote in seen.items():
                repository.adopt(conn, item_id, remote["id"], graph_event.digest(remote), mailbox)

    async def reconcile_all(self, client: GraphClient) -> list[dict]:
        agents = await asyncio.to_thread(self._connected)
        reports = []
        for agent_id, organisation_id in agents:
            try:
                reports.append(await self.reconcile(client, agent_id, organisation_id))
            except Broken:
                continue
        self.wake()
        return reports

    def _connected(self) -> list[tuple[int, int]]:
        with self.db.transaction(write=False) as conn:
            return repository.connected_agents(conn)

    # -- the loop ------------------------------------------------------------------

    def _take(self) -> list[repository.Link]:
        room = self.settings.batch - len(self._busy)
        with self.db.transaction(write=True) as conn:
            now = now_ms()
            self._seen = repository.collect(conn, now, self._seen)
            if room <= 0:
                return []
            return repository.claim(conn, now, self.settings.lease_ms, room, self._busy)

    def _sleep_s(self) -> float:
        with self.db.transaction(write=False) as conn:
            due = repository.next_due_ms(conn)
        return wakeup.sleep_s(due, self.settings.poll_s, floor_s=0.05)

    def _housekeeping(self) -> None:
        """Delete the sync log past its retention, a batch per transaction."""
        before = now_ms() - self.settings.keep_log_days * DAY_MS
        while True:
            with self.db.transaction(write=True) as conn:
                if repository.purge_log(conn, before) < 500:
                    return

    def wake(self) -> None:
        self._wake.set()

    async def _daily(self, client: GraphClient) -> None:
        """Housekeeping and reconciliation, beside the push (never holding it)."""
        try:
            await asyncio.to_thread(self._housekeeping)
            await self.reconcile_all(client)
        except Exception as e:  # the database went away: the next one repairs
            log.error("m365 reconciliation failed: %s", type(e).__name__)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start(self, client: GraphClient, link: repository.Link, plan: Plan) -> None:
        self._busy.add(link.item_id)

        async def run() -> None:
            try:
                await self.push(client, link, plan)
            except Exception as e:  # the database went away: the lease brings it back
                log.error("m365 push of item %s failed: %s", link.item_id, type(e).__name__)
            finally:
                self._busy.discard(link.item_id)
                self._wake.set()

        self._background(run())

    async def run(self, stop: asyncio.Event) -> None:
        self._next_reconcile += time.monotonic()
        loop = asyncio.get_running_loop()

        def woken() -> None:  # from a committing thread
            loop.call_soon_threadsafe(self._wake.set)

        self.db.on_outbox_commit(woken)
        # PostgreSQL: commits of other processes (the server's, when this is
        # ``calserver worker``) wake it at once through NOTIFY, as they wake
        # the webhook worker; ``poll_s`` only bounds the sleep.
        listener = (
            None
            if self.db.is_sqlite
            else asyncio.create_task(wakeup.listen(self.db, self._wake.set, log))
        )
        try:
            await self._serve(stop)
        finally:
            self.db.off_outbox_commit(woken)
            if listener is not None:
                listener.cancel()

    async def _serve(self, stop: asyncio.Event) -> None:
        async with session(self.settings) as http:
            client = client_of(http, self.settings)
            while not stop.is_set():
                self._wake.clear()
                sleep = self.settings.poll_s
                try:
                    if time.monotonic() >= self._next_reconcile:
                        self._next_reconcile = time.monotonic() + self.settings.reconcile_every_s
                        self._background(self._daily(client))
                    claimed = await asyncio.to_thread(self._take)
                    if claimed:
                        plans = await asyncio.to_thread(self._plans, claimed)
                        for link, plan in zip(claimed, plans, strict=True):
                            self._start(client, link, plan)
                        continue
                    sleep = await asyncio.to_thread(self._sleep_s)
                except Exception as e:  # the database went away: try again later
                    log.error("m365 push round failed: %s", type(e).__name__)
                    sleep = min(self.settings.poll_s, 5.0)
                await wakeup.first(self._wake, stop, timeout=sleep)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.settings.timeout_s * 4 + 5)


class _Caller:
    """``Pusher._call`` bound to one link (its log, its route)."""

    def __init__(
        self,
        pusher: Pusher,
        client: GraphClient,
        link: repository.Link,
        route: Route,
        logged: list[repository.LogEntry],
    ) -> None:
        self.pusher, self.client, self.link = pusher, client, link
        self.route, self.logged = route, logged

    async def __call__(
        self,
        operation: str,
        method: str,
        event_id: str | None,
        body: dict[str, Any] | None = None,
    ) -> Answer:
        url = self.client.events_url(self.route.mailbox, event_id, me=self.route.me)
        return await self.pusher._call(
            self.client, self.link, self.route, self.logged, operation, method, url, body
        )


def session(settings: PushSettings) -> aiohttp.ClientSession:
    """The HTTP session of Graph calls: the configured trust, no proxy from
    the environment, a bounded pool."""
    connector = aiohttp.TCPConnector(ssl=ssl_context(settings.ca_bundle), limit=200)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def client_of(http: aiohttp.ClientSession, settings: PushSettings) -> GraphClient:
    return GraphClient(http, settings.graph_url, settings.timeout_s, batching=settings.batching)


async def reconcile_once(db: Database, settings: PushSettings) -> list[dict]:
    """Reconcile every connected agent once (``calserver m365-reconcile``):
    events of ours that are no RDV are deleted at once; the rest is left
    dirty for the worker's push (or pushed here when no worker runs)."""
    pusher = Pusher(db, settings)
    async with session(settings) as http:
        client = client_of(http, settings)
        reports = await pusher.reconcile_all(client)
        while claimed := await asyncio.to_thread(pusher._take):
            plans = await asyncio.to_thread(pusher._plans, claimed)
            pairs = zip(claimed, plans, strict=True)
            await asyncio.gather(*(pusher.push(client, link, plan) for link, plan in pairs))
    return reports
