"""Microsoft 365: agents' delegated connections (refresh tokens, sealed) and
certificates for organisations' application connections

Revision ID: 0013_m365_delegated
Revises: 0010_m365
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_m365_delegated"
down_revision = "0010_m365"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "m365_delegations",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("broken_reason", sa.String(length=200), nullable=True),
        sa.Column("connected_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_m365_delegations_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_m365_delegations")),
    )
    with op.batch_alter_table("m365_connections") as batch:
        batch.add_column(sa.Column("certificate", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("m365_connections") as batch:
        batch.drop_column("certificate")
    op.drop_table("m365_delegations")
