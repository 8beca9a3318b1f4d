"""Agenda items written from outside CalDAV (the JSON API, the public booking
page) take the very path of a CalDAV PUT: the booking check and indexes of
``plugins.storage``, Radicale's parser and sanitizer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from plugins.storage import delete_stored, move_text, store_text
from storage import agenda_index, calendars
from storage.calendars import ItemRow
from storage.database import is_writing


class NoSuchAgenda(LookupError):
    pass


def _agenda(conn: Connection, collection_path: str) -> calendars.CollectionRow:
    # In a write, locked like a CalDAV write locks it (PostgreSQL), so both
    # paths queue alike and what a write reads first is still true when it
    # writes; a read locks nothing.
    lock = is_writing(conn)
    found = calendars.get_collections(conn, [collection_path], lock=lock).get(collection_path)
    if found is None:
        raise NoSuchAgenda(collection_path)
    return found


def put_event(
    conn: Connection, collection_path: str, href: str, text: str, writer: str = "agent"
) -> ItemRow:
    """Store (create or replace) one object; BookingRefused when a rule says no."""
    stored, _ = store_text(conn, _agenda(conn, collection_path), href, text, writer)
    return stored


def lock_agendas(conn: Connection, paths: list[str], agent_ids: Sequence[int]) -> None:
    """Take the locks of several agents' agendas at once, in the one order
    every writer uses (collections by path, then agents by id), before a
    write that may try one after another."""
    calendars.get_collections(conn, paths, lock=True)
    agenda_index.lock_agents(conn, agent_ids)


def move_event(
    conn: Connection, from_path: str, href: str, to_path: str, text: str, writer: str
) -> ItemRow:
    """Move one object to another agenda with a new text, checked there;
    BookingRefused when a rule says no (nothing moved)."""
    found = calendars.get_collections(conn, [from_path, to_path], lock=True)
    if from_path not in found or to_path not in found:
        raise NoSuchAgenda(from_path if from_path not in found else to_path)
    return move_text(conn, found[from_path], href, found[to_path], text, writer)


def delete_event(conn: Connection, collection_path: str, href: str) -> bool:
    return delete_stored(conn, _agenda(conn, collection_path), href)


def event_text(conn: Connection, collection_path: str, href: str) -> str | None:
    agenda = _agenda(conn, collection_path)
    found = calendars.get_items(conn, agenda.id, [href])
    return found[href].text if href in found else None


def event_texts(conn: Connection, collection_path: str) -> list[tuple[str, str]]:
    agenda = _agenda(conn, collection_path)
    return [(r.href, r.text or "") for r in calendars.list_items(conn, agenda.id)]


def item_id_of(conn: Connection, collection_path: str, href: str) -> int | None:
    """The stored item's id (what notifications and links know an RDV by)."""
    return agenda_index.item_id(conn, _agenda(conn, collection_path).id, href)


def href_of(conn: Connection, collection_path: str, uid: str) -> str | None:
    """Where the object with this UID lives (clients choose their hrefs)."""
    return calendars.href_of_uid(conn, _agenda(conn, collection_path).id, uid)
