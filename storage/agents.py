"""Repository of organisations, services and agents, with their credentials.

An agent is created together with its principal collection and its three
agendas, in the caller's transaction, so an agent never exists without them.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Select, bindparam, delete, insert, select, update

from storage import calendars, outbox, scheduling
from storage.schema import agent_roles, agent_services, agents, organisations, services

ROLES = ("admin", "basic", "intervenant")
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

# The three agendas every agent owns: path segment -> (kind, display name).
AGENDAS = {
    "rdv": "RDV",
    "plages": "Plages d'ouverture",
    "indisponibilites": "Indisponibilités",
}

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane) rather than
# the library's 64 MiB default: every login verification allocates that memory,
# and a CalDAV server verifies for many clients at once.  Verifications are
# also limited to two at a time (one per core), which bounds both memory and
# the CPU a burst of wrong passwords can take.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_verifications = threading.BoundedSemaphore(2)


class AgentError(ValueError):
    """A request about agents that cannot be carried out, with a readable reason."""


@dataclass(frozen=True)
class Relation:
    """How a logged-in agent stands towards the owner of an agenda."""

    is_self: bool
    is_admin: bool  # admin of an organisation the owner belongs to
    shares_service: bool
    # Member of a secrétariat service of an organisation the owner belongs to.
    secretariat: bool = False
    # The owner is an intervenant (no login) of a service the agent belongs to.
    manages: bool = False
    owner_active: bool = True  # False: the owner was deactivated


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AgentError("a password needs at least 8 characters")
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``.  Without a hash (unknown
    login, intervenant) a dummy one is verified and the answer is no, so that
    the time taken does not tell a login that exists from one that does not."""
    try:
        with _verifications:
            return _hasher.verify(stored_hash or _dummy_hash(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def create_organisation(
    conn: Connection, name: str, slug: str, time_zone: str = "Europe/Paris"
) -> int:
    created = conn.execute(
        insert(organisations)
        .values(name=name, slug=slug, time_zone=time_zone)
        .returning(organisations.c.id)
    ).scalar_one()
    record = scheduling.organisation(conn, created)
    assert record is not None
    outbox.track(conn, "organisation", created, record, [created])
    return created


def organisation_id(conn: Connection, slug: str) -> int:
    found = conn.execute(
        select(organisations.c.id).where(organisations.c.slug == slug)
    ).scalar_one_or_none()
    if found is None:
        raise AgentError(f"no organisation with slug {slug!r}")
    return found


def first_organisation_slug(conn: Connection) -> str | None:
    return conn.execute(
        select(organisations.c.slug).order_by(organisations.c.id).limit(1)
    ).scalar_one_or_none()


def service_id(conn: Connection, organisation: int, name: str, *, secretariat: bool = False) -> int:
    """The service of that name in the organisation, created on first use
    (a secrétariat when ``secretariat``)."""
    found = conn.execute(
        select(services.c.id).where(
            services.c.organisation_id == organisation, services.c.name == name
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    return conn.execute(
        insert(services)
        .values(organisation_id=organisation, name=name, secretariat=secretariat)
        .returning(services.c.id)
    ).scalar_one()


def agent_exists(conn: Connection, login: str) -> bool:
    return conn.execute(select(agents.c.id).where(agents.c.login == login)).first() is not None


def count_agents(conn: Connection) -> int:
    return len(conn.execute(select(agents.c.id)).all())


def create_agent(
    conn: Connection,
    login: str,
    *,
    organisation: int,
    role: str,
    password: str | None,
    services_names: tuple[str, ...] = (),
    display_name: str = "",
    email: str | None = None,
) -> int:
    """Create an agent, its role, its services, its principal and its agendas."""
    if not LOGIN_PATTERN.match(login):
        raise AgentError(
            "a login is 1 to 63 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise AgentError(f"role must be one of {', '.join(ROLES)}")
    if agent_exists(conn, login):
        raise AgentError(f"an agent with login {login!r} already exists")
    if role == "intervenant":
        if password is not None:
            raise AgentError("an intervenant has no login password")
        password_hash = None
    else:
        if password is None:
            raise AgentError("a password is required for this role")
        password_hash = hash_password(password)
    agent_id = conn.execute(
        insert(agents)
        .values(
            login=login,
            display_name=display_name or login,
            email=email,
            password_hash=password_hash,
            created_at=int(time.time()),
        )
        .returning(agents.c.id)
    ).scalar_one()
    conn.execute(
        insert(agent_roles).values(agent_id=agent_id, organisation_id=organisation, role=role)
    )
    for name in services_names:
        conn.execute(
            insert(agent_services).values(
                agent_id=agent_id, service_id=service_id(conn, organisation, name)
            )
        )
    calendars.create_collection(conn, login, login, "principal", {})
    for segment, title in AGENDAS.items():
        calendars.create_collection(
            conn,
            f"{login}/{segment}",
            login,
            segment,
            {
                "tag": "VCALENDAR",
                "D:displayname": title,
                "C:supported-calendar-component-set": "VEVENT",
            },
        )
    scheduling.tell_agent(conn, agent_id)
    return agent_id


def set_password(conn: Connection, login: str, password: str) -> None:
    updated = conn.execute(
        update(agents)
        .where(agents.c.login == login, agents.c.password_hash.is_not(None))
        .values(password_hash=hash_password(password))
    ).rowcount
    if not updated:
        raise AgentError(f"no agent with login {login!r} that can log in")


_PASSWORD_HASH = select(agents.c.password_hash).where(
    agents.c.login == bindparam("login"), agents.c.deactivated_at.is_(None)
)


def password_hash(conn: Connection, login: str) -> str | None:
    """The hash a login's password is checked against; None for an unknown
    login, an intervenant or a deactivated agent (none of them logs in)."""
    # Read on every authenticated request, hence the prebuilt statement.
    return conn.execute(_PASSWORD_HASH, {"login": login}).scalar_one_or_none()


def relation(conn: Connection, user: str, owner: str) -> Relation:
    """Rights-relevant facts between a logged-in agent and an agenda's owner."""
    if user == owner:
        return Relation(is_self=True, is_admin=False, shares_service=False)
    me, them = agents.alias("me"), agents.alias("them")
    my_role, their_role = agent_roles.alias("my_role"), agent_roles.alias("their_role")
    common = (
        select(my_role.c.role, their_role.c.role.label("their_role"))
        .join(me, me.c.id == my_role.c.agent_id)
        .join(their_role, their_role.c.organisation_id == my_role.c.organisation_id)
        .join(them, them.c.id == their_role.c.agent_id)
        .where(me.c.login == user, them.c.login == owner)
    )
    roles = conn.execute(common).all()
    is_admin = any(r.role == "admin" for r in roles)
    owner_is_intervenant = any(r.their_role == "intervenant" for r in roles)
    my_svc, their_svc = agent_services.alias("my_svc"), agent_services.alias("their_svc")
    # A service of mine: one the owner is in too, or a secrétariat of one of
    # the owner's organisations.
    mine = (
        select(my_svc.c.service_id)
        .join(me, me.c.id == my_svc.c.agent_id)
        .where(me.c.login == user)
        .limit(1)
    )
    shares = _found(
        conn,
        mine.join(their_svc, their_svc.c.service_id == my_svc.c.service_id)
        .join(them, them.c.id == their_svc.c.agent_id)
        .where(them.c.login == owner),
    )
    secretariat = _found(
        conn,
        mine.join(services, services.c.id == my_svc.c.service_id)
        .join(their_role, their_role.c.organisation_id == services.c.organisation_id)
        .join(them, them.c.id == their_role.c.agent_id)
        .where(them.c.login == owner, services.c.secretariat),
    )
    deactivated = conn.execute(
        select(agents.c.deactivated_at).where(agents.c.login == owner)
    ).scalar_one_or_none()
    return Relation(
        is_self=False,
        is_admin=is_admin,
        shares_service=shares,
        secretariat=secretariat,
        manages=shares and owner_is_intervenant,
        owner_active=deactivated is None,
    )


def _found(conn: Connection, query: Select) -> bool:
    return conn.execute(query).first() is not None


# -- the admin API: operators, memberships, deactivation -----------------------


def is_operator(conn: Connection, login: str) -> bool:
    found = conn.execute(
        select(agents.c.operator).where(agents.c.login == login, agents.c.deactivated_at.is_(None))
    ).scalar_one_or_none()
    return bool(found)


def set_operator(conn: Connection, login: str, operator: bool) -> None:
    """Make ``login`` an operator of the server (or not): the command line's
    ``calserver operator``; no API sets it."""
    updated = conn.execute(
        update(agents)
        .where(agents.c.login == login, agents.c.password_hash.is_not(None))
        .values(operator=operator)
    ).rowcount
    if not updated:
        raise AgentError(f"no agent with login {login!r} that can log in")


def active_admins(conn: Connection, organisation: int) -> list[int]:
    """Ids of the organisation's admins who are not deactivated."""
    query = (
        select(agent_roles.c.agent_id)
        .join(agents, agents.c.id == agent_roles.c.agent_id)
        .where(
            agent_roles.c.organisation_id == organisation,
            agent_roles.c.role == "admin",
            agents.c.deactivated_at.is_(None),
        )
        .order_by(agent_roles.c.agent_id)
    )
    return list(conn.execute(query).scalars())


def add_membership(conn: Connection, agent_id: int, organisation: int, role: str) -> None:
    conn.execute(
        insert(agent_roles).values(agent_id=agent_id, organisation_id=organisation, role=role)
    )


def set_role(conn: Connection, agent_id: int, organisation: int, role: str) -> None:
    conn.execute(
        update(agent_roles)
        .where(agent_roles.c.agent_id == agent_id, agent_roles.c.organisation_id == organisation)
        .values(role=role)
    )


def set_services(
    conn: Connection, agent_id: int, organisation: int, service_ids: list[int]
) -> None:
    """The agent's services in this organisation become ``service_ids``; its
    services elsewhere stay."""
    theirs = select(services.c.id).where(services.c.organisation_id == organisation)
    conn.execute(
        delete(agent_services).where(
            agent_services.c.agent_id == agent_id, agent_services.c.service_id.in_(theirs)
        )
    )
    for service in sorted(set(service_ids)):
        conn.execute(insert(agent_services).values(agent_id=agent_id, service_id=service))


def set_deactivated(conn: Connection, agent_id: int, at: int | None) -> None:
    """Deactivate the agent at ``at`` (POSIX seconds), or reactivate it (None)."""
    conn.execute(update(agents).where(agents.c.id == agent_id).values(deactivated_at=at))
