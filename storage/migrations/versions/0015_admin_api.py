"""The admin API: operators, deactivated agents, disabled services, usager
search by first letters, and the usagers of each indexed RDV

Revision ID: 0015_admin_api
Revises: 0014_service_secretariat

``usagers.search_key`` is filled here from the names.  ``rdv_usagers`` is
filled by the first start after the upgrade (``calserver.bootstrap``), which
reads the usagers of every indexed RDV from its text with the booking code.
"""

import sqlalchemy as sa
from alembic import op

from storage.text import name_key

revision = "0015_admin_api"
down_revision = "0014_service_secretariat"
branch_labels = None
depends_on = None

_usagers = sa.table(
    "usagers",
    sa.column("id", sa.Integer),
    sa.column("first_name", sa.String),
    sa.column("last_name", sa.String),
    sa.column("search_key", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("operator", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("deactivated_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False))
    with op.batch_alter_table("usagers") as batch:
        batch.add_column(
            sa.Column("search_key", sa.String(length=420), server_default="", nullable=False)
        )
    conn = op.get_bind()
    rows = conn.execute(sa.select(_usagers.c.id, _usagers.c.first_name, _usagers.c.last_name)).all()
    for usager_id, first_name, last_name in rows:
        conn.execute(
            sa.update(_usagers)
            .where(_usagers.c.id == usager_id)
            .values(search_key=name_key(last_name, first_name))
        )
    op.create_table(
        "rdv_usagers",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("usager_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["agenda_events.item_id"],
            name=op.f("fk_rdv_usagers_item_id_agenda_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", "usager_id", name=op.f("pk_rdv_usagers")),
    )
    op.create_index("ix_rdv_usagers_usager_id", "rdv_usagers", ["usager_id"])
    op.create_index(
        "ix_agenda_events_organisation_kind_start",
        "agenda_events",
        ["organisation_id", "kind", "starts_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_agenda_events_organisation_kind_start", table_name="agenda_events")
    op.drop_index("ix_rdv_usagers_usager_id", table_name="rdv_usagers")
    op.drop_table("rdv_usagers")
    with op.batch_alter_table("usagers") as batch:
        batch.drop_column("search_key")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("enabled")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("deactivated_at")
        batch.drop_column("operator")
