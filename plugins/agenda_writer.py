"""Agenda items written from outside CalDAV (the JSON API, the public booking
page) take the very path of a CalDAV PUT: Radicale's parser and sanitizer,
then ``store_item`` with its booking check and indexes."""

from __future__ import annotations

from radicale import item as radicale_item
from sqlalchemy import Connection

from plugins.storage import store_item
from storage import calendars
from storage.calendars import ItemRow

# Radicale's default for PUT, so that every path accepts exactly what a PUT would.
MAX_RRULE_OCCURRENCES = 10_000


class NoSuchAgenda(LookupError):
    pass


def prepared_item(text: str, collection_path: str) -> radicale_item.Item:
    """A Radicale item ready to store, as PUT prepares it (ValueError if invalid)."""
    components = radicale_item.read_components(text)
    if len(components) != 1:
        raise ValueError("one calendar object expected")
    radicale_item.check_and_sanitize_items(components, MAX_RRULE_OCCURRENCES, tag="VCALENDAR")
    item = radicale_item.Item(collection_path=collection_path, vobject_item=components[0])
    item.prepare()
    return item


def _agenda(conn: Connection, collection_path: str) -> calendars.CollectionRow:
    # Locked like a CalDAV write locks it (PostgreSQL), so both paths queue alike.
    found = calendars.get_collections(conn, [collection_path], lock=True).get(collection_path)
    if found is None:
        raise NoSuchAgenda(collection_path)
    return found


def put_event(
    conn: Connection, collection_path: str, href: str, text: str, writer: str = "agent"
) -> ItemRow:
    """Store (create or replace) one object; BookingRefused when a rule says no."""
    agenda = _agenda(conn, collection_path)
    stored, _ = store_item(conn, agenda, prepared_item(text, collection_path), href, writer)
    return stored


def delete_event(conn: Connection, collection_path: str, href: str) -> bool:
    return calendars.delete_item(conn, _agenda(conn, collection_path), href)


def event_text(conn: Connection, collection_path: str, href: str) -> str | None:
    agenda = _agenda(conn, collection_path)
    found = calendars.get_items(conn, agenda.id, [href])
    return found[href].text if href in found else None


def event_texts(conn: Connection, collection_path: str) -> list[tuple[str, str]]:
    agenda = _agenda(conn, collection_path)
    return [(r.href, r.text or "") for r in calendars.list_items(conn, agenda.id)]
