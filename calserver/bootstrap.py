"""First start: schema up to date, and on an empty database an organisation
with its first admin (an operator of the server), so that a fresh install can
be logged into at once."""

from __future__ import annotations

import secrets

from booking import agenda, agenda_outbox, participations
from calserver.config import Settings
from storage import agents
from storage.database import Database

# The migration that added the outbox: a database upgraded from before it has
# records the outbox must learn for initial syncs to replay them.
OUTBOX_SINCE = "0005"
# The migration that added the usagers of each indexed RDV.
PARTICIPATIONS_SINCE = "0015"


def prepare_database(db: Database, settings: Settings) -> str | None:
    """Migrate; create the first organisation and admin when there is no agent.

    Returns the admin password when it was generated here (to print once).
    """
    before = db.current_revision()
    db.migrate()
    with db.transaction(write=True) as conn:
        if before == "0001":  # agendas written before the booking engine existed
            agenda.reindex(conn)
        if before is not None and before < OUTBOX_SINCE:
            agenda_outbox.learn_existing(conn)
        if before is not None and before < PARTICIPATIONS_SINCE:
            participations.backfill(conn)
        if agents.count_agents(conn):
            return None
        generated = None if settings.admin_password else secrets.token_urlsafe(12)
        organisation = agents.create_organisation(
            conn, settings.organisation_name, settings.organisation_slug, settings.time_zone
        )
        agents.create_agent(
            conn,
            settings.admin_login,
            organisation=organisation,
            role="admin",
            password=settings.admin_password or generated,
        )
        # The first admin operates the server: it can create organisations.
        agents.set_operator(conn, settings.admin_login, True)
        return generated
