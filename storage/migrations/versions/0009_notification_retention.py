"""notifications: when a message was done (its retention counts from then),
and how many SMS segments each attempt took

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("done_ms", sa.BigInteger(), nullable=True))
    # Messages done before this column: their last due time is close enough.
    op.execute("UPDATE notifications SET done_ms = due_ms WHERE state <> 'pending'")
    op.create_index(op.f("ix_notifications_done_ms"), "notifications", ["done_ms"], unique=False)
    op.add_column("notification_receipts", sa.Column("segments", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_receipts") as batch:
        batch.drop_column("segments")
    op.drop_index(op.f("ix_notifications_done_ms"), table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("done_ms")
