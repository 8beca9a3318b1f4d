"""Microsoft 365 push: organisations' connections, one link per pushed RDV,
the outbox cursor and the sync log

Revision ID: 0010_m365
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_m365"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "m365_connections",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("broken_reason", sa.String(length=200), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_m365_connections_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_m365_connections")),
    )
    op.create_table(
        "m365_links",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=True),
        sa.Column("graph_id", sa.String(length=400), nullable=True),
        sa.Column("pushed", sa.String(length=64), nullable=True),
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dirty", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_m365_links")),
    )
    op.create_index("ix_m365_links_dirty_due", "m365_links", ["dirty", "due_ms"])
    op.create_index("ix_m365_links_agent", "m365_links", ["agent_id"])
    op.create_table(
        "m365_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_m365_cursor")),
    )
    op.create_table(
        "m365_sync_log",
        sa.Column("id", _ID, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=80), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_m365_sync_log")),
    )
    op.create_index("ix_m365_sync_log_agent_id", "m365_sync_log", ["agent_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_m365_sync_log_agent_id", table_name="m365_sync_log")
    op.drop_table("m365_sync_log")
    op.drop_table("m365_cursor")
    op.drop_index("ix_m365_links_agent", table_name="m365_links")
    op.drop_index("ix_m365_links_dirty_due", table_name="m365_links")
    op.drop_table("m365_links")
    op.drop_table("m365_connections")
