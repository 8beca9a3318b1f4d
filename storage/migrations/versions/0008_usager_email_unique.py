"""usagers: an email belongs to one usager of an organisation

Revision ID: 0008
Revises: 0007

Emails are stored trimmed and lower-cased (``storage.scheduling.normalised_email``)
and a unique index on (organisation_id, email) keeps them apart; usagers without
an email do not collide.

Existing emails are normalised first.  When two usagers of one organisation
then share an email, the upgrade refuses and changes nothing: it cannot tell
which of them is right, and merging or correcting people's records is the
organisation's call.  The message names the usagers by id (never their
emails); the previous version keeps running on the unchanged database, where
an agent corrects or clears the email of one of each pair before upgrading
again.
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from storage.database import MigrationRefused
from storage.scheduling import normalised_email

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_usagers = sa.table(
    "usagers",
    sa.column("id", sa.Integer),
    sa.column("organisation_id", sa.Integer),
    sa.column("email", sa.String),
)


def _normalise_emails() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_usagers.c.id, _usagers.c.organisation_id, _usagers.c.email)
        .where(_usagers.c.email.is_not(None))
        .order_by(_usagers.c.id)
    ).all()
    holders: dict[tuple[int, str], list[int]] = defaultdict(list)
    changed = []
    for usager_id, organisation_id, email in rows:
        normal = normalised_email(email)
        if normal is not None:
            holders[(organisation_id, normal)].append(usager_id)
        if normal != email:
            changed.append((usager_id, normal))
    shared = sorted(ids for ids in holders.values() if len(ids) > 1)
    if shared:
        groups = "; ".join(", ".join(str(i) for i in ids) for ids in shared[:20])
        more = f" and {len(shared) - 20} more groups" if len(shared) > 20 else ""
        raise MigrationRefused(
            "cannot make usagers' emails unique per organisation: these usagers share an "
            f"email with another of their organisation (ids): {groups}{more}. Nothing was "
            "changed; with the previous version, correct or clear one email of each group, "
            "then upgrade again"
        )
    for usager_id, normal in changed:
        conn.execute(_usagers.update().where(_usagers.c.id == usager_id).values(email=normal))


def upgrade() -> None:
    _normalise_emails()
    op.create_index(
        "ix_usagers_organisation_id_email", "usagers", ["organisation_id", "email"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_usagers_organisation_id_email", table_name="usagers")
