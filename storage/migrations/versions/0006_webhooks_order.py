"""webhooks: one record's deliveries in order across workers, an endpoint's
Retry-After, the outbox records' organisations (initial sync by index)

Revision ID: 0006_webhooks_order
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006_webhooks_order"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("record_key", sa.String(length=80), server_default="", nullable=False),
    )
    op.execute(
        "UPDATE webhook_deliveries SET record_key = (SELECT CASE WHEN e.model IN "
        "('rdv', 'absence', 'plage_ouverture') THEN 'item:' || e.record_id "
        "ELSE e.model || ':' || e.record_id END FROM outbox_events e "
        "WHERE e.id = webhook_deliveries.event_id)"
    )
    op.create_index(
        op.f("ix_webhook_deliveries_endpoint_id_record_key_event_id"),
        "webhook_deliveries",
        ["endpoint_id", "record_key", "event_id"],
        unique=False,
    )
    op.add_column("webhook_endpoints", sa.Column("not_before_ms", sa.BigInteger(), nullable=True))
    table = op.create_table(
        "outbox_record_organisations",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_id", "key", name=op.f("pk_outbox_record_organisations")
        ),
    )
    op.create_index(
        op.f("ix_outbox_record_organisations_key"), "outbox_record_organisations", ["key"]
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT key, state FROM outbox_records WHERE state IS NOT NULL"))
    found = [
        {"organisation_id": organisation_id, "key": key}
        for key, state in rows
        for organisation_id in set(json.loads(state).get("organisation_ids", []))
    ]
    for start in range(0, len(found), 1000):
        op.bulk_insert(table, found[start : start + 1000])


def downgrade() -> None:
    op.drop_index(
        op.f("ix_outbox_record_organisations_key"), table_name="outbox_record_organisations"
    )
    op.drop_table("outbox_record_organisations")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("not_before_ms")
    op.drop_index(
        op.f("ix_webhook_deliveries_endpoint_id_record_key_event_id"),
        table_name="webhook_deliveries",
    )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("record_key")
