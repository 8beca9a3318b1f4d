"""Bulk import of iCalendar objects into an agenda, bypassing HTTP.

For operators moving agendas in and for benchmarks that need thousands of
events quickly.  Each object is read and indexed exactly as a PUT would be
(Radicale's parser, the same occurrence index), then stored in one transaction.
"""

from __future__ import annotations

from pathlib import Path

from radicale import item as radicale_item

from plugins import timezone_cache
from plugins.item_index import item_write
from storage import calendars
from storage.database import Database

# Radicale's default for PUT, so an import accepts exactly what a PUT would.
MAX_RRULE_OCCURRENCES = 10_000


class ImportRefused(ValueError):
    """An import that cannot be done; nothing was stored."""


def import_folder(db: Database, collection_path: str, folder: Path) -> int:
    """Import every ``*.ics`` file of ``folder`` (one object each, href = file name)."""
    timezone_cache.install()
    writes = []
    for path in sorted(folder.glob("*.ics")):
        text = path.read_text(encoding="utf-8")
        try:
            vobject_item = radicale_item.read_components(text)[0]
            radicale_item.check_and_sanitize_items(
                [vobject_item], MAX_RRULE_OCCURRENCES, tag="VCALENDAR"
            )
            item = radicale_item.Item(collection_path=collection_path, vobject_item=vobject_item)
            item.prepare()
        except Exception as e:
            raise ImportRefused(f"{path.name}: not a valid calendar object ({e})") from e
        writes.append(item_write(item, path.name))
    with db.transaction(write=True) as conn:
        collection = calendars.get_collection(conn, collection_path)
        if collection is None:
            raise ImportRefused(f"no agenda at {collection_path!r}")
        return calendars.import_items(conn, collection, writes)
