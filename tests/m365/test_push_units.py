"""The push's plain parts: the event Graph is sent, its digest, transaction
ids, sealed secrets, the [m365] settings, the outbox cursor's
gaps (on SQLite and PostgreSQL) and the four-calls-per-mailbox gate."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import insert, select

from calserver.config import ConfigError, load_settings
from feeds.serializer import FeedEvent
from m365 import event
from m365.graph import GraphClient, ssl_context
from m365.secrets import SecretBox, SecretError, new_key
from storage import m365 as repository
from storage.database import Database
from storage.schema import m365_links, outbox_events
from tests.m365.graph import GraphServer

START = datetime(2026, 7, 6, 7, 0, tzinfo=UTC)  # 09:00 in Paris (summer time)


def _feed_event(**changed: object) -> FeedEvent:
    fields: dict = {
        "uid": "abc@calserver",
        "start": START,
        "end": START + timedelta(minutes=30),
        "summary": "Consultation",
        "last_modified": START,
        "location": "Mairie annexe",
        "url": "https://rdv.example.org/backoffice/rdvs/abc",
    }
    return FeedEvent(**{**fields, **changed})


def test_the_event_is_in_the_organisations_zone_with_our_uid_and_no_attendee() -> None:
    sent = event.graph_event(_feed_event(), "Europe/Paris")
    assert sent["start"] == {"dateTime": "2026-07-06T09:00:00", "timeZone": "Europe/Paris"}
    assert sent["attendees"] == [] and event.uid_of(sent) == "abc@calserver"
    overseas = event.graph_event(_feed_event(), "America/Cayenne")
    assert overseas["start"]["dateTime"] == "2026-07-06T04:00:00"


def test_the_digest_reads_graphs_answer_as_what_was_sent() -> None:
    sent = event.graph_event(_feed_event(), "Europe/Paris")
    answered = json.loads(json.dumps(sent))
    answered["start"]["dateTime"] += ".0000000"
    answered["end"]["dateTime"] += ".0000000"
    answered["id"] = "AAMk1"
    assert event.digest(answered) == event.digest(sent)
    moved = event.graph_event(_feed_event(start=START + timedelta(hours=1)), "Europe/Paris")
    renamed = {**sent, "subject": "changed by hand"}
    assert len({event.digest(sent), event.digest(moved), event.digest(renamed)}) == 3


def test_a_transaction_id_is_the_same_for_a_retry_and_new_for_a_recreation() -> None:
    first = event.transaction_id(7, "a@example.org", 0)
    assert first == event.transaction_id(7, "a@example.org", 0)
    assert first != event.transaction_id(7, "a@example.org", 1)
    assert first != event.transaction_id(8, "a@example.org", 0)


def test_secrets_open_only_with_their_key(tmp_path: Path) -> None:
    box = SecretBox(new_key())
    sealed = box.seal("client-secret")
    assert "client-secret" not in sealed and box.open(sealed) == "client-secret"
    with pytest.raises(SecretError):
        SecretBox(new_key()).open(sealed)
    config = tmp_path / "config.ini"
    config.write_text("[m365]\nkey = not-a-key\n")
    with pytest.raises(ConfigError, match=r"\[m365\] key"):
        load_settings(config, env={})
    config.write_text("[m365]\ngraph_url = http://graph.example.org\n")
    with pytest.raises(ConfigError, match="graph_url"):
        load_settings(config, env={})
    key = new_key()
    config.write_text("[m365]\nkey = wrong\n")
    assert load_settings(config, env={"CALSERVER_M365_KEY": key}).m365_key == key


def _event(db: Database, event_id: int, age_ms: int, item_id: int, now: int) -> None:
    with db.transaction(write=True) as conn:
        conn.execute(
            insert(outbox_events).values(
                id=event_id,
                created_ms=now - age_ms,
                organisation_id=1,
                model="rdv",
                record_id=item_id,
                event="created",
                sequence=1,
                changes="[]",
                data=json.dumps({"agent_ids": [5]}),
            )
        )


def _versions(db: Database) -> dict[int, int]:
    with db.transaction(write=False) as conn:
        rows = conn.execute(select(m365_links.c.item_id, m365_links.c.version))
        return {r.item_id: r.version for r in rows}


def _collect(db: Database, now: int, seen: list[int]) -> list[int]:
    with db.transaction(write=True) as conn:
        return repository.collect(conn, now, seen)


def test_the_cursor_waits_on_a_young_gap_and_marks_each_event_once(db: Database) -> None:
    now = 10_000_000
    _event(db, 1, 0, 101, now)
    _event(db, 3, 0, 103, now)  # 2 is not committed yet
    seen = _collect(db, now, [])
    assert seen == [3] and set(_versions(db)) == {101, 103}
    assert _collect(db, now, seen) == [3]
    assert _versions(db)[103] == 0  # not marked again
    _event(db, 2, 0, 102, now)  # committed late
    assert _collect(db, now, seen) == []
    assert set(_versions(db)) == {101, 102, 103}
    _event(db, 5, repository.GAP_MS + 1, 105, now)  # 4 was rolled back long ago
    assert _collect(db, now, []) == []


def test_at_most_four_calls_are_in_flight_per_mailbox(tmp_path: Path) -> None:
    graph = GraphServer(tmp_path, latency_s=0.05).start()
    graph.register_app("t", "c", "s")
    graph.tokens["token"] = None

    async def burst() -> None:
        connector = aiohttp.TCPConnector(ssl=ssl_context(str(graph.ca_path)))
        async with aiohttp.ClientSession(connector=connector) as session:
            client = GraphClient(session, graph.url + "/v1.0", 5)
            calls = [
                client.call("token", mailbox, "POST", client.events_url(mailbox), {"n": n})
                for n in range(12)
                for mailbox in ("a@example.org", "b@example.org")
            ]
            answers = await asyncio.gather(*calls)
            assert {a.status for a in answers} == {201}

    try:
        asyncio.run(burst())
    finally:
        graph.close()
    assert graph.most_in_flight == {"a@example.org": 4, "b@example.org": 4}


def test_the_sync_log_is_read_newest_first_and_purged_past_its_retention(db: Database) -> None:
    def entry(at_ms: int) -> repository.LogEntry:
        return repository.LogEntry(9, 1, at_ms, "create", 201, 12, "request-id", None)

    with db.transaction(write=True) as conn:
        repository.write_log(conn, [entry(1_000), entry(2_000), entry(3_000)])
        assert [e["at_ms"] for e in repository.log_of(conn, 9)] == [3_000, 2_000, 1_000]
        assert repository.purge_log(conn, before_ms=2_500) == 2
        assert [e["at_ms"] for e in repository.log_of(conn, 9)] == [3_000]
        assert repository.log_of(conn, 10) == []


def test_reconciliation_recreates_only_events_it_knew(db: Database) -> None:
    """A link whose event is known but gone gets a new generation (a new
    transactionId); one whose create may still be on the wire keeps its own."""
    with db.transaction(write=True) as conn:
        repository.mark_dirty(conn, [(1, 9, 1), (2, 9, 1)], 1_000)
        repository.adopt(conn, 1, "graph-1", "digest", "a@example.org")
        conn.execute(m365_links.update().where(m365_links.c.item_id == 2).values(
            mailbox="a@example.org"))  # fmt: skip
        repository.mark_dirty(conn, [(1, 9, 1), (2, 9, 1)], 2_000, recreate_in="a@example.org")
        rows = conn.execute(
            select(m365_links.c.item_id, m365_links.c.graph_id, m365_links.c.generation)
        ).all()
    assert sorted(tuple(r) for r in rows) == [(1, None, 1), (2, None, 0)]
