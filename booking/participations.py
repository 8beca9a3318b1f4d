"""The usagers of each indexed RDV, read back from the stored text.

Every write indexes an RDV's usagers with it (``booking.agenda``); this fills
``rdv_usagers`` once for RDVs indexed before that table existed (a database
upgraded past migration 0015), so their usagers' histories are complete.
"""

from __future__ import annotations

from sqlalchemy import Connection

from booking import events
from booking.rules import BookingRefused
from storage import agenda_index


def backfill(conn: Connection) -> int:
    """Index the usagers of every indexed RDV; how many RDVs had some."""
    filled, done = 0, agenda_index.items_with_usagers(conn)
    for item_id, _event, text in agenda_index.indexed_items(conn, ["rdv"]):
        if item_id in done:  # indexed again by this start's reindex
            continue
        try:
            usager_ids = events.parse(text, "UTC").usager_ids
        except BookingRefused:
            continue
        if usager_ids:
            agenda_index.set_usagers(conn, item_id, usager_ids)
            filled += 1
    return filled
