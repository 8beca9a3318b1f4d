"""Bulk import of iCalendar objects into an agenda, bypassing HTTP.

For operators moving agendas in and for benchmarks that need thousands of
events quickly.  Each object is read, checked and indexed exactly as a PUT
would be (Radicale's parser, the booking rules, the same indexes), all in one
transaction: one refused object and nothing is imported.  A calendar that does
not exist yet is created as an ordinary calendar of its owner.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import Connection

from booking.rules import BookingRefused
from plugins import timezone_cache, vobject_text
from plugins.item_index import prepared_item
from plugins.storage import store_item
from storage import agents, calendars
from storage.database import Database, mute_notices


class ImportRefused(ValueError):
    """An import that cannot be done; nothing was stored."""


def import_folder(db: Database, collection_path: str, folder: Path) -> int:
    """Import every ``*.ics`` file of ``folder`` (one object each, href = file name)."""
    timezone_cache.install()
    vobject_text.install()
    prepared = []
    for path in sorted(folder.glob("*.ics")):
        text = path.read_text(encoding="utf-8")
        try:
            item = prepared_item(text, collection_path)
        except Exception as e:
            raise ImportRefused(f"{path.name}: not a valid calendar object ({e})") from e
        prepared.append((path.name, item))
    with db.transaction(write=True) as conn:
        mute_notices(conn)  # the objects already exist for their usagers and agents
        collection = calendars.get_collection(conn, collection_path) or _new_calendar(
            conn, collection_path
        )
        uids = Counter(item.uid for _, item in prepared)
        taken = {u for u, n in uids.items() if n > 1 or calendars.has_uid(conn, collection.id, u)}
        if taken:
            raise ImportRefused(
                f"UID already used (a PUT would answer no-uid-conflict): {sorted(taken)[0]!r}"
            )
        for href, item in prepared:
            try:
                store_item(conn, collection, item, href)
            except BookingRefused as refused:
                raise ImportRefused(f"{href}: {refused.message}") from None
        return len(prepared)


def _new_calendar(conn: Connection, collection_path: str) -> calendars.CollectionRow:
    owner, _, name = collection_path.partition("/")
    if not name or "/" in name or not agents.agent_exists(conn, owner):
        raise ImportRefused(
            f"no agenda at {collection_path!r}: give an agent's calendar as <login>/<name>"
        )
    props = {
        "tag": "VCALENDAR",
        "D:displayname": name,
        "C:supported-calendar-component-set": "VEVENT,VTODO,VJOURNAL",
    }
    return calendars.create_collection(conn, collection_path, owner, "other", props)
