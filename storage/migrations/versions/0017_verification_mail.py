"""Public booking page: the verification email waits in its request's row
for the notification worker instead of being sent inside the request

Revision ID: 0017_verification_mail
Revises: 0016_public_booking
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_verification_mail"
down_revision = "0016_public_booking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("booking_requests") as batch:
        batch.add_column(sa.Column("mail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mail_due_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("mail_tries", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("mail_refused", sa.Boolean(), server_default="0", nullable=False)
        )
    op.create_index(
        op.f("ix_booking_requests_mail_due_ms"), "booking_requests", ["mail_due_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_requests_mail_due_ms"), table_name="booking_requests")
    with op.batch_alter_table("booking_requests") as batch:
        batch.drop_column("mail_refused")
        batch.drop_column("mail_tries")
        batch.drop_column("mail_due_ms")
        batch.drop_column("mail")
