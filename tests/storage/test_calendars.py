"""The calendar repository on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import pytest

from storage import calendars
from storage.calendars import FAR_FUTURE, InvalidSyncToken, ItemWrite
from storage.database import Database


def _write(href: str, start: int, end: int, ranges=None, until=None) -> ItemWrite:  # type: ignore[no-untyped-def]
    return ItemWrite(
        href=href,
        uid=href.removesuffix(".ics"),
        etag=f'"{href}-{start}"',
        component="VEVENT",
        text=f"BEGIN:VCALENDAR\r\nX:{href}\r\nEND:VCALENDAR\r\n",
        t_start=start,
        t_end=end,
        ranges=ranges,
        ranges_until=until,
    )


@pytest.fixture
def agenda(db: Database) -> calendars.CollectionRow:
    with db.transaction(write=True) as conn:
        calendars.create_collection(conn, "alice", "alice", "principal", {})
        return calendars.create_collection(conn, "alice/rdv", "alice", "rdv", {"tag": "VCALENDAR"})


def test_put_replace_and_lookups(db: Database, agenda: calendars.CollectionRow) -> None:
    with db.transaction(write=True) as conn:
        assert calendars.put_item(conn, agenda, _write("a.ics", 100, 200)) is None
        old = calendars.put_item(conn, agenda, _write("a.ics", 300, 400))
        assert old is not None and old.t_start == 100
        assert calendars.has_uid(conn, agenda.id, "a")
        assert not calendars.has_uid(conn, agenda.id, "b")
        found = calendars.get_items(conn, agenda.id, ["a.ics", "missing.ics"])
        assert list(found) == ["a.ics"] and found["a.ics"].t_start == 300
    assert agenda.revision == 2


def test_time_range_is_exact_for_series(db: Database, agenda: calendars.CollectionRow) -> None:
    with db.transaction(write=True) as conn:
        calendars.put_item(conn, agenda, _write("single.ics", 100, 200))
        # A series with occurrences at 0-10, 1000-1010, 2000-2010, complete.
        calendars.put_item(
            conn,
            agenda,
            _write(
                "series.ics",
                0,
                2010,
                ranges=[(0, 10), (1000, 1010), (2000, 2010)],
                until=FAR_FUTURE,
            ),
        )
        # A series indexed only up to 5000; its enclosing range is open-ended.
        calendars.put_item(
            conn,
            agenda,
            _write("open.ics", 0, FAR_FUTURE, ranges=[(0, 10), (4000, 4010)], until=5000),
        )
        hits = {
            r.href: certain
            for r, certain in calendars.items_in_range(conn, agenda.id, "VEVENT", 500, 900)
        }
        assert hits == {}
        hits = {
            r.href: certain
            for r, certain in calendars.items_in_range(conn, agenda.id, "VEVENT", 150, 1005)
        }
        assert hits == {"single.ics": True, "series.ics": True}
        hits = {
            r.href: certain
            for r, certain in calendars.items_in_range(conn, agenda.id, "VEVENT", 6000, 7000)
        }
        assert hits == {"open.ics": False}


def test_sync_with_limit_continues_where_it_stopped(
    db: Database, agenda: calendars.CollectionRow
) -> None:
    with db.transaction(write=True) as conn:
        for n in range(5):
            calendars.put_item(conn, agenda, _write(f"i{n}.ics", n, n + 1))
        start = agenda.revision
        for n in (1, 3, 4, 6):
            calendars.put_item(conn, agenda, _write(f"i{n}.ics", n, n + 2))
        calendars.delete_item(conn, agenda, "i3.ics")
        hrefs, reached, truncated = calendars.changes_since(conn, agenda, start, 2)
        assert (hrefs, truncated) == (["i1.ics", "i4.ics"], True)
        rest, final, truncated = calendars.changes_since(conn, agenda, reached, 2)
        assert (rest, truncated) == (["i6.ics", "i3.ics"], False)
        assert final == agenda.revision
        everything, _, _ = calendars.changes_since(conn, agenda, None, None)
        assert sorted(everything) == ["i0.ics", "i1.ics", "i2.ics", "i4.ics", "i6.ics"]


def test_foreign_or_future_tokens_are_refused(
    db: Database, agenda: calendars.CollectionRow
) -> None:
    token = calendars.sync_token(agenda)
    assert calendars.parse_sync_token(agenda, token) == agenda.revision
    for bad in ("urn:calserver:sync:other:0", token + "9", token.rsplit(":", 1)[0] + ":x"):
        with pytest.raises(InvalidSyncToken):
            calendars.parse_sync_token(agenda, bad)


def test_move_logs_both_collections(db: Database, agenda: calendars.CollectionRow) -> None:
    with db.transaction(write=True) as conn:
        other = calendars.create_collection(
            conn, "alice/perso", "alice", "other", {"tag": "VCALENDAR"}
        )
        calendars.put_item(conn, agenda, _write("m.ics", 1, 2))
        before_source, before_target = agenda.revision, other.revision
        calendars.move_item(conn, agenda, "m.ics", other, "n.ics")
        assert calendars.changes_since(conn, agenda, before_source, None)[0] == ["m.ics"]
        assert calendars.changes_since(conn, other, before_target, None)[0] == ["n.ics"]
        assert list(calendars.get_items(conn, other.id, ["n.ics"])) == ["n.ics"]
        assert calendars.get_items(conn, agenda.id, ["m.ics"]) == {}


def test_a_failed_transaction_leaves_nothing(db: Database, agenda: calendars.CollectionRow) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as conn:
        calendars.put_item(conn, agenda, _write("ghost.ics", 1, 2))
        raise RuntimeError("refused half way")
    with db.transaction(write=False) as conn:
        assert calendars.get_items(conn, agenda.id, ["ghost.ics"]) == {}
        assert calendars.get_collection(conn, "alice/rdv").revision == 0


def test_head_revision_constant_matches_the_migrations(db: Database) -> None:
    from alembic.script import ScriptDirectory

    from storage.database import HEAD_REVISION

    assert ScriptDirectory.from_config(db.alembic_config()).get_current_head() == HEAD_REVISION
    assert db.current_revision() == HEAD_REVISION


def test_texts_are_streamed_page_by_page_in_order(
    db: Database, agenda: calendars.CollectionRow
) -> None:
    with db.transaction(write=True) as conn:
        for n in range(5):
            calendars.put_item(conn, agenda, _write(f"t{n}.ics", n, n + 1))
        pages, after = [], 0
        while page := calendars.item_texts_after(conn, agenda.id, after, page=2):
            pages.append([text for _, text in page])
            after = page[-1][0]
    assert [len(p) for p in pages] == [2, 2, 1]
    texts = [text for p in pages for text in p]
    assert [t.split("X:")[1].split("\r")[0] for t in texts] == [f"t{n}.ics" for n in range(5)]


@pytest.mark.parametrize("wildcard", ["_", "%"])
def test_deleting_a_collection_spares_paths_its_name_would_match_as_a_pattern(
    db: Database, wildcard: str
) -> None:
    """Logins may hold ``_`` (and paths ``%``): LIKE reads them as wildcards, so
    deleting ``a_b`` must not take ``axb``'s calendars with it."""
    with db.transaction(write=True) as conn:
        doomed = calendars.create_collection(conn, f"a{wildcard}b", "x", "principal", {})
        below = calendars.create_collection(
            conn, f"a{wildcard}b/rdv", "x", "rdv", {"tag": "VCALENDAR"}
        )
        calendars.create_collection(conn, "axb", "y", "principal", {})
        spared = calendars.create_collection(conn, "axb/rdv", "y", "rdv", {"tag": "VCALENDAR"})
        calendars.put_item(conn, below, _write("gone.ics", 100, 200))
        calendars.put_item(conn, spared, _write("kept.ics", 100, 200))
    with db.transaction(write=True) as conn:
        assert calendars.item_ids_under(conn, doomed.path) == calendars.item_ids_under(
            conn, below.path
        )
        calendars.delete_collection(conn, doomed.path)
    with db.connection() as conn:
        assert calendars.get_collection(conn, f"a{wildcard}b/rdv") is None
        assert calendars.get_collection(conn, "axb") is not None
        assert list(calendars.get_items(conn, spared.id, ["kept.ics"])) == ["kept.ics"]
