"""privacy: feed tokens kept only as a hash, usagers' structured postcode and
city (a home visit's LOCATION), an opaque public id per indexed event

Revision ID: 0004
Revises: 0003

Tokens already issued stay valid (they are found by their hash); their URL
can no longer be shown, only rotated.  Postcode and city are filled from the
free-text address where it holds "<5 digits> <city>" (the rule the feed used
so far), so existing home visits keep their LOCATION.
"""

import re

import sqlalchemy as sa
from alembic import op

from storage.agenda_index import public_id

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_POSTCODE_CITY = re.compile(r"\b(\d{5})\s+([^,\n]+)")


def _fill_postcodes() -> None:
    conn = op.get_bind()
    usagers = sa.table(
        "usagers",
        sa.column("id", sa.Integer),
        sa.column("address", sa.String),
        sa.column("postcode", sa.String),
        sa.column("city", sa.String),
    )
    rows = conn.execute(sa.select(usagers.c.id, usagers.c.address)).all()
    for usager_id, address in rows:
        found = _POSTCODE_CITY.search(address or "")
        if found:
            conn.execute(
                usagers.update()
                .where(usagers.c.id == usager_id)
                .values(postcode=found.group(1), city=found.group(2).strip()[:200])
            )


def _fill_public_ids() -> None:
    conn = op.get_bind()
    events = sa.table(
        "agenda_events", sa.column("item_id", sa.Integer), sa.column("public_id", sa.String)
    )
    for (item_id,) in conn.execute(sa.select(events.c.item_id)).all():
        conn.execute(
            events.update().where(events.c.item_id == item_id).values(public_id=public_id(item_id))
        )


def upgrade() -> None:
    with op.batch_alter_table("usagers") as batch:
        batch.add_column(sa.Column("postcode", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("city", sa.String(length=200), nullable=True))
    _fill_postcodes()
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("feed_token")
    with op.batch_alter_table("agenda_events") as batch:
        batch.add_column(sa.Column("public_id", sa.String(length=36), nullable=True))
    _fill_public_ids()
    with op.batch_alter_table("agenda_events") as batch:
        batch.alter_column("public_id", existing_type=sa.String(length=36), nullable=False)
        batch.create_index(op.f("ix_agenda_events_public_id"), ["public_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("agenda_events") as batch:
        batch.drop_index(op.f("ix_agenda_events_public_id"))
        batch.drop_column("public_id")
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("feed_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("usagers") as batch:
        batch.drop_column("city")
        batch.drop_column("postcode")
