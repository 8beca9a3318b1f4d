"""notifications: scheduled messages, their receipts, usagers' links, the
agents' preference and the usagers' channel choices

Revision ID: 0007
Revises: 0006_webhooks_order
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006_webhooks_order"
branch_labels = None
depends_on = None


def _big_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column(
                "rdv_notifications_level",
                sa.String(length=8),
                server_default="others",
                nullable=False,
            )
        )
    with op.batch_alter_table("usagers") as batch:
        batch.add_column(
            sa.Column("notify_by_email", sa.Boolean(), server_default="1", nullable=False)
        )
        batch.add_column(
            sa.Column("notify_by_sms", sa.Boolean(), server_default="1", nullable=False)
        )
    op.create_table(
        "notifications",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rdv", sa.Text(), nullable=False),
        sa.Column("link_token", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_state_due_ms"), "notifications", ["state", "due_ms"], unique=False
    )
    op.create_index(op.f("ix_notifications_item_id"), "notifications", ["item_id"], unique=False)
    op.create_table(
        "notification_receipts",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("notification_id", _big_id(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_receipts_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_receipts")),
    )
    op.create_index(
        op.f("ix_notification_receipts_item_id"),
        "notification_receipts",
        ["item_id"],
        unique=False,
    )
    op.create_table(
        "rdv_links",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("usager_id", sa.Integer(), nullable=False),
        sa.Column("token_hmac", sa.String(length=64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "usager_id", name=op.f("pk_rdv_links")),
    )
    secrets_table = op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.bulk_insert(secrets_table, [{"name": "link_hmac", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("rdv_links")
    op.drop_index(op.f("ix_notification_receipts_item_id"), table_name="notification_receipts")
    op.drop_table("notification_receipts")
    op.drop_index(op.f("ix_notifications_item_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_state_due_ms"), table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("usagers") as batch:
        batch.drop_column("notify_by_sms")
        batch.drop_column("notify_by_email")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("rdv_notifications_level")
