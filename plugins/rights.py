"""Radicale rights over the agent tables.

- an agent has every right on its own principal and agendas;
- an admin has every right on the agendas of the agents of its organisations;
- agents sharing a service read and write each other's ``rdv`` agenda, read
  each other's ``indisponibilites`` (masked: ``masks``), and may list each
  other's principal to find it; members of a secrétariat service stand so
  towards every agent of their organisations;
- an intervenant (an agenda without a login) is managed by the agents of its
  services: they read and write all its agendas;
- everybody logged in may list the root (children are filtered by these rules);
- nobody else sees anything;
- nobody deletes or replaces whole an agent's rdv, plages or indisponibilites;
- a deactivated agent's agendas are read-only for its admins, hidden from others.
"""

from __future__ import annotations

import time

from radicale import config as radicale_config
from radicale import pathutils, rights

from storage import agents
from storage.database import Database

ALL = "RrWw"
# What a colleague (same service, or a secrétariat member) may do in an agenda.
COLLEAGUE_ACCESS = {"rdv": "rw", "indisponibilites": "r"}
# Agendas a colleague reads masked: when, never what (domain.md: absences
# "read-only, without title").
MASKED_AGENDAS = ("indisponibilites",)
# The three agendas every agent has are part of the agent: nobody deletes them
# or replaces them whole (Radicale's "d" and "o" flags); their items stay writable.
KEEP = "do"
# Radicale asks once per item when it lists a collection: an admin listing a
# 10,000-event agenda would cost 20,000 queries.  A relation is reused for this
# long, which is also how long a revoked right may linger.
RELATION_TTL_SECONDS = 2.0


class Rights(rights.BaseRights):
    def __init__(self, configuration: radicale_config.Configuration, db: Database) -> None:
        super().__init__(configuration)
        self._db = db
        self._relations: dict[tuple[str, str], tuple[float, agents.Relation]] = {}

    def _relation(self, user: str, owner: str) -> agents.Relation:
        key, now = (user, owner), time.monotonic()
        cached = self._relations.get(key)
        if cached is not None and now - cached[0] < RELATION_TTL_SECONDS:
            return cached[1]
        with self._db.connection() as conn:
            relation = agents.relation(conn, user, owner)
        if len(self._relations) > 10_000:
            self._relations.clear()
        self._relations[key] = (now, relation)
        return relation

    def forget(self, owner: str) -> None:
        """Drop what this process remembers about ``owner``'s agendas (after a
        deactivation; other processes see it within RELATION_TTL_SECONDS)."""
        for key in [k for k in self._relations if k[1] == owner]:
            self._relations.pop(key, None)

    def authorization(self, user: str, user_groups: set, path: str) -> str:
        if not user:
            return ""
        sane = pathutils.strip_path(path)
        if not sane:
            return "R"
        owner, _, rest = sane.partition("/")
        granted = ALL + KEEP if rest in agents.AGENDAS else ALL
        if owner == user:
            return granted
        relation = self._relation(user, owner)
        if not relation.owner_active:
            # A deactivated agent's agendas stay, read-only, for its admins.
            return "Rr" if relation.is_admin else ""
        if relation.is_admin:
            return granted
        if not (relation.shares_service or relation.secretariat):
            return ""
        if not rest:
            return "R"
        access = "rw" if relation.manages else COLLEAGUE_ACCESS.get(rest.split("/", 1)[0], "")
        if access and rest in agents.AGENDAS:
            return access + KEEP
        return access

    def masks(self, user: str, owner: str, agenda: str) -> bool:
        """Whether ``user`` reads ``owner``'s ``agenda`` (a collection's last
        path segment) masked: a colleague's absences, not one's own, nor an
        admin's or an intervenant's manager's view."""
        if agenda not in MASKED_AGENDAS or not user or user == owner:
            return False
        relation = self._relation(user, owner)
        return not (relation.is_admin or relation.manages)
