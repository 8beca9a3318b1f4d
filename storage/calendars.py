"""Repository of calendar collections, their items and their change log.

Plain data in, plain data out: callers (the Radicale storage plugin, imports,
later the booking engine) compute what an item's iCalendar text means (UID,
time range, occurrences); this module only stores and finds it, each lookup
an indexed query.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    update,
)

from storage.schema import changes, collections, item_ranges, items

# Far enough that every real occurrence is before it; also Radicale's "infinity".
FAR_FUTURE = 253402300799  # 9999-12-31T23:59:59Z
_IN_CHUNK = 500


@dataclass
class CollectionRow:
    id: int
    path: str
    owner: str
    kind: str
    props: dict[str, str]
    revision: int
    sync_id: str
    modified_at: int


@dataclass
class ItemRow:
    href: str
    uid: str
    etag: str
    component: str
    text: str | None  # None when listed without texts
    t_start: int
    t_end: int
    modified_at: int


class ItemHead(NamedTuple):
    """What a listing of hrefs and etags needs of an item: no text, no dates."""

    href: str
    etag: str
    component: str
    modified_at: int


@dataclass
class ItemWrite:
    """What to store for one calendar object resource."""

    href: str
    uid: str
    etag: str
    component: str
    text: str
    t_start: int
    t_end: int
    # Occurrence ranges of a recurring item, complete for every occurrence that
    # starts before ``ranges_until``; None when [t_start, t_end) is the only range.
    ranges: list[tuple[int, int]] | None = None
    ranges_until: int | None = None

    def stored(self, modified_at: int) -> ItemRow:
        """The row this write leaves in the table (saves reading it back)."""
        return _item(self, modified_at)


class InvalidSyncToken(ValueError):
    """The client's sync token is not one of this collection's."""


def _now() -> int:
    return int(time.time())


def _collection(row) -> CollectionRow:  # type: ignore[no-untyped-def]
    return CollectionRow(
        id=row.id,
        path=row.path,
        owner=row.owner,
        kind=row.kind,
        props=json.loads(row.props),
        revision=row.revision,
        sync_id=row.sync_id,
        modified_at=row.modified_at,
    )


_ITEM_COLUMNS = (
    items.c.href,
    items.c.uid,
    items.c.etag,
    items.c.component,
    items.c.text,
    items.c.t_start,
    items.c.t_end,
    items.c.modified_at,
)


def _item(row, modified_at: int | None = None) -> ItemRow:  # type: ignore[no-untyped-def]
    """An ItemRow from a result row, or from an ItemWrite given its write time."""
    return ItemRow(
        href=row.href,
        uid=row.uid,
        etag=row.etag,
        component=row.component,
        text=row.text,
        t_start=row.t_start,
        t_end=row.t_end,
        modified_at=row.modified_at if modified_at is None else modified_at,
    )


# Statements on the request path are built once: building a SQLAlchemy
# statement costs more than running it on SQLite.
_COLLECTIONS_BY_PATH = select(collections).where(
    collections.c.path.in_(bindparam("paths", expanding=True))
)
# In a write transaction the collections a request works on are locked first
# (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers), so that
# what the request checks (does the item exist? is the UID taken?) still holds
# when it writes.
_COLLECTIONS_BY_PATH_LOCKED = _COLLECTIONS_BY_PATH.with_for_update()
_CHILD_COLLECTIONS = (
    select(collections)
    .where(collections.c.parent_path == bindparam("parent"))
    .order_by(collections.c.path)
)
# Listings that only need etags (PROPFIND, sync-collection) leave the texts
# in the database: at 10,000 events that is most of a listing's memory.
_ITEM_COLUMNS_NO_TEXT = tuple(
    null().label("text") if column is items.c.text else column for column in _ITEM_COLUMNS
)


def _items_of(columns: tuple) -> Select:
    return select(*columns).where(items.c.collection_id == bindparam("cid")).order_by(items.c.id)


def _items_by_href(columns: tuple) -> Select:
    return select(*columns).where(
        items.c.collection_id == bindparam("cid"),
        items.c.href.in_(bindparam("hrefs", expanding=True)),
    )


_ITEMS_OF = {True: _items_of(_ITEM_COLUMNS), False: _items_of(_ITEM_COLUMNS_NO_TEXT)}
_ITEMS_BY_HREF = {
    True: _items_by_href(_ITEM_COLUMNS),
    False: _items_by_href(_ITEM_COLUMNS_NO_TEXT),
}
_HAS_UID = select(
    exists().where(items.c.collection_id == bindparam("cid"), items.c.uid == bindparam("uid"))
)
_OLD_ITEM = select(items.c.id, *_ITEM_COLUMNS).where(
    items.c.collection_id == bindparam("cid"), items.c.href == bindparam("href_")
)
_BUMP = (
    update(collections)
    .where(collections.c.id == bindparam("cid"))
    .values(revision=collections.c.revision + 1, modified_at=bindparam("now"))
    .returning(collections.c.revision)
)
_LOG_CHANGE = insert(changes)
_DROP_RANGES = delete(item_ranges).where(item_ranges.c.item_id == bindparam("item_id"))
_INSERT_ITEM = insert(items).returning(items.c.id)
_UPDATE_ITEM = update(items).where(items.c.id == bindparam("item_id"))


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


# -- collections ---------------------------------------------------------


def get_collection(conn: Connection, path: str) -> CollectionRow | None:
    return get_collections(conn, [path]).get(path)


def get_collections(
    conn: Connection, paths: Sequence[str], *, lock: bool = False
) -> dict[str, CollectionRow]:
    statement = _COLLECTIONS_BY_PATH_LOCKED if lock else _COLLECTIONS_BY_PATH
    rows = conn.execute(statement, {"paths": sorted(paths)})
    return {r.path: _collection(r) for r in rows}


def child_collections(conn: Connection, parent_path: str) -> list[CollectionRow]:
    return [_collection(r) for r in conn.execute(_CHILD_COLLECTIONS, {"parent": parent_path})]


def create_collection(
    conn: Connection, path: str, owner: str, kind: str, props: dict[str, str]
) -> CollectionRow:
    now = _now()
    conn.execute(
        insert(collections).values(
            path=path,
            parent_path=parent_of(path),
            owner=owner,
            kind=kind,
            props=json.dumps(props, sort_keys=True),
            revision=0,
            sync_id=secrets.token_hex(8),
            modified_at=now,
        )
    )
    created = get_collection(conn, path)
    assert created is not None
    return created


def delete_collection(conn: Connection, path: str) -> None:
    """Delete a collection and every collection below it (items cascade)."""
    conn.execute(
        delete(collections).where(
            or_(
                collections.c.path == path,
                collections.c.path.startswith(path + "/", autoescape=True),
            )
        )
    )


def bump_revision(conn: Connection, collection: CollectionRow) -> int:
    """Take the collection's next revision; on PostgreSQL this also row-locks it
    until commit, which orders concurrent writers of one collection."""
    now = _now()
    revision = conn.execute(_BUMP, {"cid": collection.id, "now": now}).scalar_one()
    collection.revision, collection.modified_at = revision, now
    return revision


def set_props(conn: Connection, collection: CollectionRow, props: dict[str, str]) -> None:
    bump_revision(conn, collection)
    conn.execute(
        update(collections)
        .where(collections.c.id == collection.id)
        .values(props=json.dumps(props, sort_keys=True))
    )
    collection.props = dict(props)


# -- items ---------------------------------------------------------------


def list_items(conn: Connection, collection_id: int, *, texts: bool = True) -> list[ItemRow]:
    """Every item of the collection; with ``texts=False`` their ``text`` is None."""
    return [_item(r) for r in conn.execute(_ITEMS_OF[texts], {"cid": collection_id})]


_ITEM_HEADS = _items_of((items.c.href, items.c.etag, items.c.component, items.c.modified_at))


def list_item_heads(conn: Connection, collection_id: int) -> list[ItemHead]:
    """Every item of the collection, in the order of ``list_items``, as a head."""
    # Fetched all at once: row by row costs more than the query.
    return [ItemHead(*r) for r in conn.execute(_ITEM_HEADS, {"cid": collection_id}).all()]


# The page's ids first, from the collection's index alone; then their texts by
# key.  Asked in one query, SQLite sorted the texts of every item after
# ``after`` to keep the first page of them: the whole collection's texts read
# again for every page.
_TEXT_PAGE = (
    select(items.c.id, items.c.text)
    .where(
        items.c.id.in_(
            select(items.c.id)
            .where(items.c.collection_id == bindparam("cid"), items.c.id > bindparam("after"))
            .order_by(items.c.id)
            .limit(bindparam("size"))
        )
    )
    .order_by(items.c.id)
)


def item_texts_after(
    conn: Connection, collection_id: int, after: int, page: int = 500
) -> list[tuple[int, str]]:
    """The next page of the collection's texts in item order, as (id, text),
    after the item with id ``after`` (0 for the first page): read a page at a
    time by key, so that no more than a page is held whatever the driver
    buffers, and no transaction stays open between pages."""
    params = {"cid": collection_id, "after": after, "size": page}
    return [(key, text) for key, text in conn.execute(_TEXT_PAGE, params).all()]


def list_hrefs(conn: Connection, collection_id: int) -> list[str]:
    return list(
        conn.execute(select(items.c.href).where(items.c.collection_id == collection_id)).scalars()
    )


def get_items(
    conn: Connection, collection_id: int, hrefs: Sequence[str], *, texts: bool = True
) -> dict[str, ItemRow]:
    found: dict[str, ItemRow] = {}
    for i in range(0, len(hrefs), _IN_CHUNK):
        chunk = hrefs[i : i + _IN_CHUNK]
        rows = conn.execute(_ITEMS_BY_HREF[texts], {"cid": collection_id, "hrefs": list(chunk)})
        found.update((r.href, _item(r)) for r in rows)
    return found


def href_of_uid(conn: Connection, collection_id: int, uid: str) -> str | None:
    return (
        conn.execute(
            select(items.c.href).where(items.c.collection_id == collection_id, items.c.uid == uid)
        )
        .scalars()
        .first()
    )


def item_text(conn: Connection, item_id: int) -> str | None:
    return conn.execute(select(items.c.text).where(items.c.id == item_id)).scalar_one_or_none()


def has_uid(conn: Connection, collection_id: int, uid: str) -> bool:
    return conn.execute(_HAS_UID, {"cid": collection_id, "uid": uid}).scalar_one()


def items_in_range(
    conn: Connection,
    collection_id: int,
    component: str | None,
    start: int,
    end: int,
    *,
    texts: bool = True,
) -> list[tuple[ItemRow, bool]]:
    """Items with an occurrence overlapping [start, end), and whether that is certain.

    Certain (True) when the stored ranges are exact for that window; False for a
    series whose stored occurrences stop before ``end`` (the caller then tests it).
    With ``texts=False`` their ``text`` is None.
    """
    occurrence_in_window = exists().where(
        item_ranges.c.item_id == items.c.id,
        item_ranges.c.r_start < end,
        item_ranges.c.r_end > start,
    )
    columns = _ITEM_COLUMNS if texts else _ITEM_COLUMNS_NO_TEXT
    query = select(*columns, items.c.ranges_until).where(
        items.c.collection_id == collection_id,
        items.c.t_start < end,
        items.c.t_end > start,
        or_(
            items.c.ranges_until.is_(None),
            items.c.ranges_until < end,
            occurrence_in_window,
        ),
    )
    if component:
        query = query.where(items.c.component == component)
    result = []
    for row in conn.execute(query.order_by(items.c.id)).all():
        certain = row.ranges_until is None or end <= row.ranges_until
        result.append((_item(row), certain))
    return result


def _record_change(conn: Connection, collection: CollectionRow, href: str, operation: str) -> int:
    revision = bump_revision(conn, collection)
    conn.execute(
        _LOG_CHANGE,
        {
            "collection_id": collection.id,
            "revision": revision,
            "href": href,
            "operation": operation,
        },
    )
    return revision


def _insert_ranges(conn: Connection, item_id: int, write: ItemWrite) -> None:
    if write.ranges:
        conn.execute(
            insert(item_ranges),
            [{"item_id": item_id, "r_start": s, "r_end": e} for s, e in write.ranges],
        )


def put_item(conn: Connection, collection: CollectionRow, write: ItemWrite) -> ItemRow | None:
    """Create or replace the item at ``write.href``; return the replaced one."""
    old_row = conn.execute(_OLD_ITEM, {"cid": collection.id, "href_": write.href}).first()
    revision = _record_change(conn, collection, write.href, "modified" if old_row else "created")
    values = {
        "uid": write.uid,
        "etag": write.etag,
        "component": write.component,
        "text": write.text,
        "t_start": write.t_start,
        "t_end": write.t_end,
        "ranges_until": write.ranges_until,
        "revision": revision,
        "modified_at": collection.modified_at,
    }
    if old_row:
        item_id = old_row.id
        conn.execute(_UPDATE_ITEM, {"item_id": item_id, **values})
        conn.execute(_DROP_RANGES, {"item_id": item_id})
    else:
        item_id = conn.execute(
            _INSERT_ITEM, {"collection_id": collection.id, "href": write.href, **values}
        ).scalar_one()
    _insert_ranges(conn, item_id, write)
    return _item(old_row) if old_row else None


def delete_item(conn: Connection, collection: CollectionRow, href: str) -> bool:
    deleted = conn.execute(
        delete(items).where(items.c.collection_id == collection.id, items.c.href == href)
    ).rowcount
    if deleted:
        _record_change(conn, collection, href, "deleted")
    return bool(deleted)


def item_ids_under(conn: Connection, path: str, *, subtree: bool = True) -> list[int]:
    """Ids of the items of the collection at ``path`` (and, with ``subtree``,
    of every collection below it)."""
    where = collections.c.path == path
    if subtree:
        where = or_(where, collections.c.path.startswith(path + "/", autoescape=True))
    query = (
        select(items.c.id)
        .join(collections, collections.c.id == items.c.collection_id)
        .where(where)
        .order_by(items.c.id)
    )
    return list(conn.execute(query).scalars())


def delete_all_items(conn: Connection, collection: CollectionRow) -> None:
    for href in list_hrefs(conn, collection.id):
        delete_item(conn, collection, href)


def move_item(
    conn: Connection, source: CollectionRow, href: str, target: CollectionRow, to_href: str
) -> None:
    """Move an item (keeping its id and occurrence rows), logging both sides."""
    if source.id != target.id or href != to_href:
        conn.execute(
            delete(items).where(items.c.collection_id == target.id, items.c.href == to_href)
        )
    _record_change(conn, source, href, "deleted")
    revision = _record_change(conn, target, to_href, "created")
    conn.execute(
        update(items)
        .where(items.c.collection_id == source.id, items.c.href == href)
        .values(
            collection_id=target.id, href=to_href, revision=revision, modified_at=target.modified_at
        )
    )


# -- sync ----------------------------------------------------------------


def sync_token(collection: CollectionRow, revision: int | None = None) -> str:
    rev = collection.revision if revision is None else revision
    return f"urn:calserver:sync:{collection.sync_id}:{rev}"


def parse_sync_token(collection: CollectionRow, token: str) -> int:
    prefix = f"urn:calserver:sync:{collection.sync_id}:"
    if not token.startswith(prefix):
        raise InvalidSyncToken(f"sync token {token!r} does not belong to this collection")
    try:
        revision = int(token[len(prefix) :])
    except ValueError:
        raise InvalidSyncToken(f"malformed sync token {token!r}") from None
    if not 0 <= revision <= collection.revision:
        raise InvalidSyncToken(f"sync token {token!r} is from the future")
    return revision


def changes_since(
    conn: Connection, collection: CollectionRow, since: int | None, limit: int | None
) -> tuple[list[str], int, bool]:
    """Hrefs changed after revision ``since`` (all items when None), oldest first.

    Returns (hrefs, revision reached, truncated).  With a limit the revision
    reached is that of the last href returned, so a follow-up sync from it
    yields exactly the rest.
    """
    if since is None:
        last = items.c.revision.label("last")
        query = select(items.c.href, last).where(items.c.collection_id == collection.id)
    else:
        last = func.max(changes.c.revision).label("last")
        query = (
            select(changes.c.href, last)
            .where(changes.c.collection_id == collection.id, changes.c.revision > since)
            .group_by(changes.c.href)
        )
    rows, reached, truncated = _up_to_limit(conn, query, last, collection, limit)
    return [r[0] for r in rows], reached, truncated


def initial_sync_heads(
    conn: Connection, collection: CollectionRow, limit: int | None
) -> tuple[list[ItemHead], int, bool]:
    """What ``changes_since(since=None)`` lists, as item heads in its order."""
    last = items.c.revision.label("last")
    query = select(items.c.href, items.c.etag, items.c.component, items.c.modified_at, last).where(
        items.c.collection_id == collection.id
    )
    rows, reached, truncated = _up_to_limit(conn, query, last, collection, limit)
    return [ItemHead(*r[:4]) for r in rows], reached, truncated


def _up_to_limit(
    conn: Connection,
    query: Select,
    last: ColumnElement[int],
    collection: CollectionRow,
    limit: int | None,
) -> tuple[Sequence[Row], int, bool]:
    """Rows of a sync listing (href first, revision ``last``) oldest first, at
    most ``limit`` of them cut at a revision boundary; with the revision
    reached and whether the listing was cut."""
    query = query.order_by(last, query.selected_columns[0])
    if limit is not None:
        query = query.limit(limit + 1)
    rows = conn.execute(query).all()
    if limit is None or len(rows) <= limit:
        return rows, collection.revision, False
    # Cut at a revision boundary so that no href of the same revision is lost.
    kept = rows[:limit]
    boundary = kept[-1].last
    if rows[limit].last == boundary:
        below = [r for r in kept if r.last < boundary]
        if below:
            kept, boundary = below, below[-1].last
        else:
            # One revision holds more hrefs than the limit (a bulk import):
            # return that whole revision rather than make no progress.
            kept = [r for r in rows if r.last == boundary]
            kept += conn.execute(query.limit(None).offset(len(rows))).all()
            kept = [r for r in kept if r.last == boundary]
    return kept, boundary, True
