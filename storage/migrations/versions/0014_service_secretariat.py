"""services: a secrétariat flag

Revision ID: 0014_service_secretariat
Revises: 0013_m365_delegated

The members of a secrétariat service see every agenda and search every motif
of their organisations (domain.md, "Actors and roles").  Existing services are
not secrétariats: nobody's rights change at the upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_service_secretariat"
down_revision = "0013_m365_delegated"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("secretariat", sa.Boolean(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("secretariat")
