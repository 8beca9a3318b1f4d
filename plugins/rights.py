"""Radicale rights over the agent tables.

- an agent has every right on its own principal and agendas;
- an admin has every right on the agendas of the agents of its organisations;
- agents sharing a service read and write each other's ``rdv`` agenda, and may
  list each other's principal to find it;
- everybody logged in may list the root (children are filtered by these rules);
- nobody else sees anything.
"""

from __future__ import annotations

from radicale import config as radicale_config
from radicale import pathutils, rights

from storage import agents
from storage.database import Database

ALL = "RrWw"
SHARED_AGENDAS = ("rdv",)


class Rights(rights.BaseRights):
    def __init__(self, configuration: radicale_config.Configuration, db: Database) -> None:
        super().__init__(configuration)
        self._db = db

    def authorization(self, user: str, user_groups: set, path: str) -> str:
        if not user:
            return ""
        sane = pathutils.strip_path(path)
        if not sane:
            return "R"
        owner, _, rest = sane.partition("/")
        if owner == user:
            return ALL
        with self._db.connection() as conn:
            relation = agents.relation(conn, user, owner)
        if relation.is_admin:
            return ALL
        if not relation.shares_service:
            return ""
        if not rest:
            return "R"
        if rest.split("/", 1)[0] in SHARED_AGENDAS:
            return "rw"
        return ""
