"""Three agents for rights tests: alice and bob share a service, carol does not."""

from __future__ import annotations

from sqlalchemy import Connection

from storage import agents

PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-12", "carol": "carol-pass-1"}
SERVICES = {"alice": "PMI", "bob": "PMI", "carol": "Social"}


def create_team(conn: Connection, organisation: int) -> None:
    """Create the three agents (basic role) with their agendas."""
    for login, password in PASSWORDS.items():
        agents.create_agent(
            conn,
            login,
            organisation=organisation,
            role="basic",
            password=password,
            services_names=(SERVICES[login],),
        )
