"""Item heads read from an index: PROPFIND Depth 1 and sync-collection list
(href, etag, component, modified_at, revision) of every item of a calendar;
from this index alone, without reading the rows that hold the texts

Revision ID: 0018_item_heads_index
Revises: 0017_verification_mail
"""

from alembic import op

revision = "0018_item_heads_index"
down_revision = "0017_verification_mail"
branch_labels = None
depends_on = None

COLUMNS = ["collection_id", "id", "href", "etag", "component", "modified_at", "revision"]


def upgrade() -> None:
    op.create_index("ix_items_collection_heads", "items", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_items_collection_heads", table_name="items")
