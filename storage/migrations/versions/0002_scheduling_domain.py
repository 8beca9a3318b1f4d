"""scheduling domain: organisation settings, lieux, motifs, usagers, agenda index

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(
            sa.Column("pentecost_worked", sa.Boolean(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("overbooking_allowed", sa.Boolean(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("contact_email", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("contact_phone", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("contact_address", sa.String(length=400), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("other_calendars_block", sa.Boolean(), server_default="1", nullable=False)
        )
    op.create_table(
        "lieux",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_lieux_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lieux")),
    )
    op.create_table(
        "motifs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("color", sa.String(length=7), server_default="#1f6feb", nullable=False),
        sa.Column("duration_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column(
            "location_type", sa.String(length=16), server_default="public_office", nullable=False
        ),
        sa.Column("bookable_by", sa.String(length=32), server_default="agents", nullable=False),
        sa.Column("min_delay_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("max_delay_minutes", sa.Integer(), server_default="129600", nullable=False),
        sa.Column("instructions_before", sa.Text(), server_default="", nullable=False),
        sa.Column("instructions_after", sa.Text(), server_default="", nullable=False),
        sa.Column("usager_can_cancel", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("usager_can_move", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_motifs_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_motifs_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_motifs")),
        sa.UniqueConstraint(
            "organisation_id",
            "name",
            "location_type",
            name=op.f("uq_motifs_organisation_id_name_location_type"),
        ),
    )
    op.create_table(
        "usagers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=400), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_usagers_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usagers")),
    )
    op.create_table(
        "agenda_events",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("uid", sa.String(length=400), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("motif_id", sa.Integer(), nullable=True),
        sa.Column("lieu_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("motif_ids", sa.Text(), nullable=True),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("expanded_until", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agenda_events_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_agenda_events_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_agenda_events")),
    )
    op.create_index(
        "ix_agenda_events_agent_kind_start", "agenda_events", ["agent_id", "kind", "starts_at"]
    )
    op.create_table(
        "agenda_occurrences",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("r_start", sa.BigInteger(), nullable=False),
        sa.Column("r_end", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["agenda_events.item_id"],
            name=op.f("fk_agenda_occurrences_item_id_agenda_events"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_agenda_occurrences_agent_kind_start",
        "agenda_occurrences",
        ["agent_id", "kind", "r_start", "r_end", "item_id"],
    )
    op.create_index("ix_agenda_occurrences_item", "agenda_occurrences", ["item_id"])


def downgrade() -> None:
    op.drop_table("agenda_occurrences")
    op.drop_table("agenda_events")
    op.drop_table("usagers")
    op.drop_table("motifs")
    op.drop_table("lieux")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("other_calendars_block")
    with op.batch_alter_table("organisations") as batch:
        for column in (
            "contact_address",
            "contact_phone",
            "contact_email",
            "overbooking_allowed",
            "pentecost_worked",
        ):
            batch.drop_column(column)
