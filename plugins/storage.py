"""Radicale storage plugin over the SQL repositories of ``storage/``.

Radicale calls ``acquire_lock`` around the part of each request that touches
storage; here that opens the request's database transaction.  Items are built
fully loaded (text, etag, uid, time range) so that Radicale can keep using them
after it has released the lock, and a collection caches its row so that the
properties Radicale reads late (getctag, sync-token, last-modified) answer from
the snapshot the request saw.  Collection methods called outside the lock open
a short transaction of their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import vobject
from radicale import config as radicale_config
from radicale import item as radicale_item
from radicale import pathutils, storage, types
from radicale.item import filter as radicale_filter
from sqlalchemy import Connection

from booking import agenda, agenda_outbox, events
from booking.rules import BookingRefused
from plugins.calendar_export import export_pieces
from plugins.errors import WriteRefused, booking_precondition
from plugins.expansion import ExpansionCache
from plugins.item_index import item_write, prepared_item
from storage import agenda_index, calendars
from storage.calendars import CollectionRow, ItemHead, ItemRow
from storage.database import Database, set_author

# Set by the REPORT handler for the duration of one request: DAV:limit of a
# sync-collection, and the time range of a calendar-query with expand (which
# Radicale removes from the filters it hands to the storage).
sync_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar("sync_limit", default=None)
sync_truncated: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "sync_truncated", default=None
)
expand_range: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "expand_range", default=None
)
# False while a request walks a listing without filtering on content (PROPFIND,
# sync-collection, multiget): listings then leave texts in the database and
# items read them in batches when asked (see TextBatches).
texts_needed: contextvars.ContextVar[bool] = contextvars.ContextVar("texts_needed", default=True)
# Set when the storage stored a different text than the client sent (an RDV's
# SEQUENCE, LAST-MODIFIED and STATUS are the server's): the PUT answer then
# carries no ETag, so that the client fetches what was stored (RFC 4791 5.3.4).
restamped: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "restamped", default=None
)
# Set by the GET handler to its encoding: a whole calendar is then exported
# already encoded (see Collection.serialize).
export_encoding: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "export_encoding", default=None
)
# Set by the application for the reading requests (GET, PROPFIND, REPORT) to
# ``plugins.rights.Rights.masks`` for the logged-in agent: (owner, agenda) ->
# whether that agenda's items are read masked (``booking.events.masked``).
masked_for: contextvars.ContextVar[Callable[[str, str], bool] | None] = contextvars.ContextVar(
    "masked_for", default=None
)
# Bound by the application for each request: an answer made in pieces is
# handed here (its body given to Radicale is empty) and sent a piece at a time.
answer_pieces: contextvars.ContextVar[list[Iterator[bytes]] | None] = contextvars.ContextVar(
    "answer_pieces", default=None
)


class TextBatches:
    """Texts of a listing, read from the database a batch at a time, in order.

    Radicale walks a listing in order and drops each item once answered, so
    reading the next few hundred texts when the first of them is wanted keeps
    one batch in memory instead of the whole agenda, in one query per batch.
    """

    SIZE = 500

    def __init__(self, collection: Collection, hrefs: list[str]) -> None:
        self._collection = collection
        self._hrefs = hrefs
        self._position = {href: i for i, href in enumerate(hrefs)}
        self._loaded: dict[str, str] = {}

    def text(self, href: str) -> str:
        if href not in self._loaded:
            start = self._position[href]
            batch = self._hrefs[start : start + self.SIZE]
            self._loaded = self._collection.load_texts(batch)
        return self._loaded.pop(href)


class StoredItem(radicale_item.Item):
    """A Radicale item whose text is read from the database on first use
    (``masked``: as a colleague reads it, see ``booking.events.masked``)."""

    def __init__(
        self,
        collection: Collection,
        row: ItemRow,
        batches: TextBatches | None = None,
        masked: bool = False,
    ) -> None:
        super().__init__(
            collection=collection,
            href=row.href,
            text="",
            etag=row.etag,
            uid=row.uid,
            name="VCALENDAR",
            component_name=row.component,
            time_range=(row.t_start, row.t_end),
            last_modified=http_date(row.modified_at),
        )
        self._text = row.text
        self._batches = batches
        self._masked = masked
        if masked and self._text is not None:
            self._text = events.masked(self._text)

    def serialize(self) -> str:
        if self._text is None:
            assert isinstance(self.collection, Collection) and self.href
            if self._batches is not None:
                text = self._batches.text(self.href)
            else:
                text = self.collection.load_texts([self.href])[self.href]
            self._text = events.masked(text) if self._masked else text
        return self._text

    @property
    def vobject_item(self):  # type: ignore[no-untyped-def]
        if self._vobject_item is None:
            self._vobject_item = vobject.readOne(self.serialize())
        return self._vobject_item


def http_date(timestamp: int) -> str:
    """An item's or collection's ``getlastmodified`` value."""
    return email.utils.formatdate(timestamp, usegmt=True)


class Collection(storage.BaseCollection):
    def __init__(self, storage_: Storage, row: CollectionRow | None, path: str = "") -> None:
        self._storage = storage_
        self._row = row
        self._path = row.path if row else path

    # -- identity and metadata ------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def owner(self) -> str:
        return self._row.owner if self._row else ""

    def _require_row(self) -> CollectionRow:
        if self._row is None:
            raise ValueError("the root collection has no items")
        return self._row

    @property
    def etag(self) -> str:
        if self._row is None:
            return '"root"'
        return f'"{self._row.sync_id}-{self._row.revision}"'

    @property
    def last_modified(self) -> str:
        return http_date(self._row.modified_at if self._row else 0)

    def get_meta(self, key: str | None = None) -> Any:
        props = self._row.props if self._row else {}
        return dict(props) if key is None else props.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        row = self._require_row()
        with self._storage.db.connection(write=True) as conn:
            calendars.set_props(conn, row, dict(props))

    # -- items ------------------------------------------------------------

    @property
    def masked(self) -> bool:
        """Whether the logged-in agent reads this collection's items masked."""
        decide = masked_for.get()
        return self._row is not None and decide is not None and decide(self.owner, self._row.kind)

    def _item(self, row: ItemRow, batches: TextBatches | None = None) -> radicale_item.Item:
        return StoredItem(self, row, batches, self.masked)

    def _items(self, rows: list[ItemRow]) -> list[radicale_item.Item]:
        """Items of a listing; those listed without text share batched loading."""
        lazy = [r.href for r in rows if r.text is None]
        batches = TextBatches(self, lazy) if lazy else None
        masked = self.masked
        return [StoredItem(self, r, batches, masked) for r in rows]

    def load_texts(self, hrefs: list[str]) -> dict[str, str]:
        row = self._require_row()
        with self._storage.db.connection() as conn:
            found = calendars.get_items(conn, row.id, hrefs)
        missing = set(hrefs) - found.keys()
        if missing:
            raise ValueError(f"{len(missing)} item(s) disappeared from {row.path!r}")
        return {href: found[href].text or "" for href in hrefs}

    def get_all(self) -> Iterable[radicale_item.Item]:
        if self._row is None:
            return []
        with self._storage.db.connection() as conn:
            rows = calendars.list_items(conn, self._row.id)
        return [self._item(r) for r in rows]

    def serialize(self, vcf_to_ics: bool = False, ShareActions: dict | None = None) -> str | bytes:
        """The whole calendar; encoded while ``export_encoding`` is bound, and
        then handed in pieces to ``answer_pieces`` when that is bound too (the
        answer's body is then empty: see ``plugins.application``).

        The pieces read the texts once, a page at a time, each page in a
        short transaction of its own, when the answer starts being sent.
        """
        if self.tag != "VCALENDAR" or self._row is None:
            return super().serialize(vcf_to_ics, ShareActions or {})
        encoding = export_encoding.get()
        texts: Iterable[str] = self._texts(self._row.id)
        if self.masked:  # decided now: the pieces may be read after this request's bindings
            texts = map(events.masked, texts)
        pieces = export_pieces(
            texts,
            self.get_meta("D:displayname"),
            self.get_meta("C:calendar-description"),
            encoding or "utf-8",
        )
        holder = answer_pieces.get()
        if encoding and holder is not None:
            holder.append(pieces)
            return b""
        exported = b"".join(pieces)
        return exported if encoding else exported.decode()

    def _texts(self, collection_id: int) -> Iterator[str]:
        """The collection's texts in order, a page per short transaction (no
        transaction is left open between two pieces of an answer)."""
        after = 0
        while True:
            with self._storage.db.connection() as conn:
                page = calendars.item_texts_after(conn, collection_id, after)
            if not page:
                return
            for _, text in page:
                yield text
            after = page[-1][0]

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        wanted = list(dict.fromkeys(hrefs))
        if self._row is None:
            return [(h, None) for h in wanted]
        with self._storage.db.connection() as conn:
            found = calendars.get_items(conn, self._row.id, wanted, texts=texts_needed.get())
        items = dict(zip(found, self._items(list(found.values())), strict=True))
        return [(h, items.get(h)) for h in wanted]

    def get_filtered(
        self, filters: Iterable[ET.Element]
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        if self._row is None or not self.tag:
            return []
        tag, start, end, simple = radicale_filter.simplify_prefilters(filters, self.tag)
        window = expand_range.get()
        if window is not None:
            # Expand: Radicale removed the time range from ``filters`` and tests it
            # after expansion; an item with no occurrence in the window would
            # expand to nothing, so the window only pre-filters.
            unbounded = (start, end) == (
                radicale_filter.TIMESTAMP_MIN,
                radicale_filter.TIMESTAMP_MAX,
            )
            with self._storage.db.connection() as conn:
                rows = calendars.items_in_range(conn, self._row.id, tag, *window)
            return [(self._item(row), simple and unbounded) for row, _ in rows]
        with self._storage.db.connection() as conn:
            rows = calendars.items_in_range(conn, self._row.id, tag, start, end)
        return [(self._item(row), simple and certain) for row, certain in rows]

    def has_uid(self, uid: str) -> bool:
        if self._row is None:
            return False
        with self._storage.db.connection() as conn:
            return calendars.has_uid(conn, self._row.id, uid)

    def upload(
        self, href: str, item: radicale_item.Item
    ) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        if not pathutils.is_safe_path_component(href):
            raise pathutils.UnsafePathError(href)
        row = self._require_row()
        with refusals_as_preconditions(), self._storage.db.connection(write=True) as conn:
            stored, old = store_item(conn, row, item, href)
        return self._item(stored), (self._item(old) if old else None)

    def delete(self, href: str | None = None) -> None:
        row = self._require_row()
        with self._storage.db.connection(write=True) as conn:
            if href is None:
                agenda_outbox.items_deleted(conn, calendars.item_ids_under(conn, row.path))
                calendars.delete_collection(conn, row.path)
            elif not delete_stored(conn, row, href):
                raise storage.ComponentNotFoundError(href)

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        row = self._require_row()
        since = calendars.parse_sync_token(row, old_token) if old_token else None
        limit = sync_limit.get()
        with self._storage.db.connection() as conn:
            hrefs, reached, truncated = calendars.changes_since(conn, row, since, limit)
        flag = sync_truncated.get()
        if flag is not None:
            flag.append(truncated)
        return calendars.sync_token(row, reached), hrefs


class Storage(storage.BaseStorage):
    _is_collision_free = True
    _supports_unicode = True
    _supports_trailing_whitespace = True
    _supports_problematic_chars = True

    def __init__(self, configuration: radicale_config.Configuration, db: Database) -> None:
        super().__init__(configuration)
        self.db = db
        # Items' expansions, kept across requests (see plugins.expansion).
        self.expansions = ExpansionCache()

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        with self.db.transaction(write=mode == "w") as conn:
            if mode == "w":
                set_author(conn, user)
            yield

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], ContextManager[None]] | None = None,
        user_groups: set[str] | None = None,
    ) -> Iterable[types.CollectionOrItem]:
        sane = pathutils.strip_path(path)
        with self.db.connection() as conn:
            return self._discover(conn, sane, depth)

    def _discover(self, conn: Connection, sane: str, depth: str) -> list[types.CollectionOrItem]:
        """Load everything at once: the result outlives the transaction."""
        parent_path, href = posixpath.split(sane)
        rows = calendars.get_collections(
            conn,
            [sane, parent_path] if parent_path else [sane],
            lock=self.db.in_write_transaction,
        )
        row = rows.get(sane)
        if sane and row is None:
            parent = rows.get(parent_path)
            if parent is None:
                return []
            found = calendars.get_items(conn, parent.id, [href])
            return [Collection(self, parent)._item(found[href])] if href in found else []
        collection = Collection(self, row, sane)
        result: list[types.CollectionOrItem] = [collection]
        if depth != "0":
            if row is not None and row.props.get("tag"):  # only calendars hold items
                listed = calendars.list_items(conn, row.id, texts=texts_needed.get())
                result.extend(collection._items(listed))
            result.extend(
                Collection(self, child) for child in calendars.child_collections(conn, sane)
            )
        return result

    def calendar_heads(self, path: str) -> tuple[Collection, list[ItemHead]] | None:
        """The calendar at ``path`` with the heads of its items, in ``discover``'s
        order, for listings answered without building Radicale items.

        None when ``path`` is not a calendar, or is one that holds collections
        (``discover`` lists those after the items): Radicale answers those.
        """
        sane = pathutils.strip_path(path)
        with self.db.connection() as conn:
            row = calendars.get_collection(conn, sane)
            if row is None or row.props.get("tag") != "VCALENDAR":
                return None
            if calendars.child_collections(conn, sane):
                return None
            return Collection(self, row), calendars.list_item_heads(conn, row.id)

    def events_in_range(
        self, path: str, start: int, end: int, *, texts: bool = False
    ) -> tuple[Collection, list[tuple[ItemRow, bool]]] | None:
        """The calendar at ``path`` and its VEVENT items (with their texts when
        asked) with an occurrence overlapping [start, end), each with whether
        that is certain (see ``calendars.items_in_range``), for the queries
        answered without building Radicale items; None when ``path`` is not a
        calendar (Radicale answers)."""
        with self.db.connection() as conn:
            row = calendars.get_collection(conn, pathutils.strip_path(path))
            if row is None or row.props.get("tag") != "VCALENDAR":
                return None
            found = calendars.items_in_range(conn, row.id, "VEVENT", start, end, texts=texts)
        return Collection(self, row), found

    def initial_sync_heads(self, path: str) -> tuple[Collection, str, list[ItemHead]] | None:
        """The calendar at ``path``, the token and item heads ``sync("")`` would
        answer (``sync_limit`` honoured, ``sync_truncated`` told), for a first
        sync-collection answered without building Radicale items; None when
        ``path`` is not a calendar (Radicale answers)."""
        with self.db.connection() as conn:
            row = calendars.get_collection(conn, pathutils.strip_path(path))
            if row is None or row.props.get("tag") != "VCALENDAR":
                return None
            heads, reached, truncated = calendars.initial_sync_heads(conn, row, sync_limit.get())
        flag = sync_truncated.get()
        if flag is not None:
            flag.append(truncated)
        return Collection(self, row), calendars.sync_token(row, reached), heads

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Mapping[str, str] | None = None,
    ) -> tuple[Collection, dict[str, radicale_item.Item], list[str]]:
        sane = pathutils.strip_path(href)
        with refusals_as_preconditions(), self.db.connection(write=True) as conn:
            existing = calendars.get_collection(conn, sane)
            if existing is not None and not props:
                return Collection(self, existing), {}, []
            replaced: dict[str, radicale_item.Item] = {}
            if existing is None:
                owner = sane.split("/", 1)[0]
                kind = "principal" if "/" not in sane else "other"
                row = calendars.create_collection(conn, sane, owner, kind, dict(props or {}))
            else:
                row = existing
                old_collection = Collection(self, row)
                for old in calendars.list_items(conn, row.id):
                    replaced[old.href] = old_collection._item(old)
                agenda_outbox.items_deleted(
                    conn, calendars.item_ids_under(conn, row.path, subtree=False)
                )
                calendars.delete_all_items(conn, row)
                calendars.set_props(conn, row, dict(props or {}))
            collection = Collection(self, row)
            new_hrefs: list[str] = []
            for item in items or ():
                item_href = _free_href(item.uid, new_hrefs)
                store_item(conn, row, item, item_href)
                new_hrefs.append(item_href)
        return collection, replaced, new_hrefs

    def move(
        self, item: radicale_item.Item, to_collection: storage.BaseCollection, to_href: str
    ) -> None:
        assert isinstance(item.collection, Collection) and isinstance(to_collection, Collection)
        target = to_collection._require_row()
        source = item.collection._require_row()
        with refusals_as_preconditions(), self.db.connection(write=True) as conn:
            if (source.id, item.href) != (target.id, to_href):
                overwritten = agenda_index.item_id(conn, target.id, to_href)
                agenda_outbox.items_deleted(conn, [overwritten] if overwritten else [])
            calendars.move_item(conn, source, item.href or "", target, to_href)
            # The item arrives in another agenda: the rules of that agenda apply.
            # Its row moved with its text and ranges: it is written again only
            # when those rules restamp its text; else only its booking index is.
            text = item.serialize()
            prepared = _check(conn, target, to_href, text, "agent")
            if prepared is not None and prepared.text != text:
                restamped_item = prepared_item(prepared.text, target.path)
                _write(conn, target, restamped_item, to_href, prepared, "agent")
            else:
                _index(conn, target, to_href, prepared, "agent")

    def verify(self) -> bool:
        return True


@contextlib.contextmanager
def refusals_as_preconditions() -> Iterator[None]:
    """Turn a booking refusal into the WriteRefused the application answers 403."""
    try:
        yield
    except BookingRefused as refused:
        raise WriteRefused(booking_precondition(refused.code), refused.message) from None


def _check(
    conn: Connection, row: CollectionRow, href: str, text: str, writer: str
) -> agenda.AgendaWrite | None:
    if row.props.get("tag") != "VCALENDAR":
        return None
    return agenda.prepare_write(
        conn,
        owner=row.owner,
        collection_kind=row.kind,
        collection_id=row.id,
        href=href,
        text=text,
        writer=writer,
    )


def _write(
    conn: Connection,
    row: CollectionRow,
    item: radicale_item.Item,
    href: str,
    prepared: agenda.AgendaWrite | None,
    writer: str,
) -> tuple[ItemRow, ItemRow | None]:
    write = item_write(item, href)
    old = calendars.put_item(conn, row, write)
    _index(conn, row, href, prepared, writer)
    return write.stored(row.modified_at), old


def _index(
    conn: Connection,
    row: CollectionRow,
    href: str,
    prepared: agenda.AgendaWrite | None,
    writer: str,
) -> None:
    """The booking index and the outbox of the item stored at ``href``."""
    if prepared is None:
        return
    item_id = agenda_index.item_id(conn, row.id, href)
    assert item_id is not None
    agenda_index.replace_event(conn, item_id, prepared.index)
    agenda_outbox.item_written(conn, item_id, prepared, writer)


def store_item(
    conn: Connection,
    row: CollectionRow,
    item: radicale_item.Item,
    href: str,
    writer: str = "agent",
) -> tuple[ItemRow, ItemRow | None]:
    """Write one item Radicale prepared (a PUT, a MOVE, an import) with its
    booking index, after the booking check; BookingRefused when a rule says no."""
    text = item.serialize()
    prepared = _check(conn, row, href, text, writer)
    if prepared is not None and prepared.text != text:
        item = prepared_item(prepared.text, row.path)
        flag = restamped.get()
        if flag is not None:
            flag.append(True)
    return _write(conn, row, item, href, prepared, writer)


def store_text(
    conn: Connection, row: CollectionRow, href: str, text: str, writer: str = "agent"
) -> tuple[ItemRow, ItemRow | None]:
    """The same write for a text built outside CalDAV (the API): checked first,
    then read once by Radicale's parser in its final form."""
    prepared = _check(conn, row, href, text, writer)
    final = prepared.text if prepared is not None else text
    return _write(conn, row, prepared_item(final, row.path), href, prepared, writer)


def move_text(
    conn: Connection,
    source: CollectionRow,
    href: str,
    target: CollectionRow,
    text: str,
    writer: str,
) -> ItemRow:
    """Move an item to another agenda, at the same href, with a new text (a
    usager moving their RDV to another agent's slot): the item keeps its id
    (its links and notifications know it by that) and is checked in the
    target as the change of the item it was (its SEQUENCE bumped, the
    usager's rules on changes applied, its old time not counted as busy); the
    outbox sees one change (agents and time).  In a savepoint: a refusal
    (BookingRefused) leaves the item where it was, and the caller may try
    another agenda in the same transaction.  LookupError when the target
    already holds that href."""
    if agenda_index.item_id(conn, target.id, href) is not None:
        raise LookupError(f"{target.path}/{href}")
    with conn.begin_nested():
        calendars.move_item(conn, source, href, target, href)
        prepared = _check(conn, target, href, text, writer)
        final = prepared.text if prepared is not None else text
        stored, _ = _write(conn, target, prepared_item(final, target.path), href, prepared, writer)
    return stored


def delete_stored(conn: Connection, row: CollectionRow, href: str) -> bool:
    """Delete one item (a CalDAV DELETE, the API), telling the outbox first;
    False when there is none at ``href``."""
    item_id = agenda_index.item_id(conn, row.id, href)
    if item_id is None:
        return False
    agenda_outbox.items_deleted(conn, [item_id])
    return calendars.delete_item(conn, row, href)


def _free_href(uid: str, taken: list[str]) -> str:
    """An href for an item of a whole-collection PUT, derived from its UID like Radicale."""
    candidate = uid if uid.lower().endswith(".ics") else uid + ".ics"
    if pathutils.is_safe_path_component(candidate) and candidate not in taken:
        return candidate
    return radicale_item.find_available_uid(lambda h: h in taken, ".ics")
