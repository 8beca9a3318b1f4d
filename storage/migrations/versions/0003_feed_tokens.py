"""feed tokens and the agent's feed setting

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("feed_token", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("feed_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("feed_with_availability", sa.Boolean(), server_default="0", nullable=False)
        )
        batch.create_unique_constraint(op.f("uq_agents_feed_token_hash"), ["feed_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint(op.f("uq_agents_feed_token_hash"), type_="unique")
        batch.drop_column("feed_with_availability")
        batch.drop_column("feed_token_hash")
        batch.drop_column("feed_token")
