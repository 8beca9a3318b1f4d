"""Who is told what, on plain data: usagers' notices and the agents' four
preference levels (``now`` passed in, fixed dates)."""

from __future__ import annotations

from datetime import UTC, datetime

from booking.model import Organisation
from booking.notifications import AgentChoice, Message, lifecycle, plan, reminders

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
ALICE, BOB, INTERVENANT = 1, 2, 3
AGENTS = {
    ALICE: AgentChoice(ALICE, "alice", "all", True),
    BOB: AgentChoice(BOB, "bob", "others", True),
    INTERVENANT: AgentChoice(INTERVENANT, "ext", "all", False),
}


def _rdv(day: int = 10, hour: int = 9, **kw: object) -> dict:
    state: dict = {
        "starts_at": datetime(2026, 3, day, hour, tzinfo=UTC).isoformat(),
        "ends_at": datetime(2026, 3, day, hour, 30, tzinfo=UTC).isoformat(),
        "status": "unknown",
        "lieu_id": 4,
        "motif_id": 5,
        "agent_ids": [ALICE],
        "usager_ids": [7],
    }
    state.update(kw)
    return state


def _plan(old, new, writer="agent", author="bob", agents=AGENTS, now=NOW):  # type: ignore[no-untyped-def]
    return plan(old, new, writer=writer, author=author, agents=agents, zone="Europe/Paris", now=now)


def _usager(kind: str, channels: tuple[str, ...] = ("email", "sms")) -> list[Message]:
    return [Message("usager", 7, channel, kind) for channel in channels]


def test_the_notice_of_each_change() -> None:
    assert lifecycle(None, _rdv()) == "created"
    assert lifecycle(_rdv(), _rdv(hour=10)) == "updated"  # moved
    assert lifecycle(_rdv(), _rdv(lieu_id=9)) == "updated"  # relocated
    assert lifecycle(_rdv(), _rdv(status="revoked")) == "cancelled"
    assert lifecycle(_rdv(), None) == "cancelled"  # a CalDAV DELETE
    assert lifecycle(_rdv(status="revoked"), _rdv()) == "created"  # reinstated
    assert lifecycle(_rdv(), _rdv(status="seen")) is None
    assert lifecycle(_rdv(), _rdv(motif_id=6)) is None
    assert lifecycle(_rdv(status="excused"), None) is None


def test_usagers_and_agents_of_a_booking() -> None:
    assert _plan(None, _rdv()) == _usager("created") + [Message("agent", ALICE, "email", "created")]
    moved = _plan(_rdv(), _rdv(hour=10))
    assert moved == _usager("updated") + [Message("agent", ALICE, "email", "updated")]


def test_a_usager_who_cancels_gets_an_email_only() -> None:
    by_service = _plan(_rdv(), _rdv(status="revoked"))
    assert by_service[:2] == _usager("cancelled")
    by_usager = _plan(_rdv(), _rdv(status="excused"), writer="usager")
    assert by_usager[:1] == _usager("cancelled", ("email",)) and len(by_usager) == 2


def test_nothing_once_the_rdv_has_started() -> None:
    assert _plan(None, _rdv(day=2, hour=7)) == []
    assert _plan(_rdv(day=2, hour=7), _rdv(day=2, hour=7, status="revoked")) == []


def test_the_switch_turns_usagers_off_not_agents() -> None:
    off = _plan(None, _rdv(notify_usagers=False))
    assert off == [Message("agent", ALICE, "email", "created")]
    assert reminders(_rdv(notify_usagers=False), Organisation(1), NOW) == []


def test_usagers_added_and_removed() -> None:
    found = _plan(_rdv(usager_ids=[7]), _rdv(usager_ids=[8]))
    assert found == [Message("usager", 7, c, "cancelled") for c in ("email", "sms")] + [
        Message("usager", 8, c, "created") for c in ("email", "sms")
    ]


def _agents(level: str, author: str | None, old: dict | None, new: dict | None) -> list[str]:
    choices = {ALICE: AgentChoice(ALICE, "alice", level, True)}
    return [m.kind for m in _plan(old, new, author=author, agents=choices) if m.audience == "agent"]


def test_level_all() -> None:
    assert _agents("all", "alice", None, _rdv()) == ["created"]
    assert _agents("all", "bob", _rdv(), _rdv(status="revoked")) == ["cancelled"]


def test_level_others_skips_the_agents_own_changes() -> None:
    assert _agents("others", "alice", None, _rdv()) == []
    assert _agents("others", "bob", None, _rdv()) == ["created"]
    assert _agents("others", None, None, _rdv()) == ["created"]  # a usager booked


def test_level_soon_only_today_or_tomorrow_old_or_new() -> None:
    assert _agents("soon", "bob", None, _rdv(day=10)) == []
    assert _agents("soon", "bob", None, _rdv(day=3)) == ["created"]  # tomorrow
    assert _agents("soon", "bob", _rdv(day=3), _rdv(day=10)) == ["updated"]  # was tomorrow
    assert _agents("soon", "bob", _rdv(day=2, hour=15), _rdv(day=2, hour=16)) == ["updated"]


def test_level_none() -> None:
    assert _agents("none", "bob", None, _rdv(day=2, hour=15)) == []


def test_intervenants_and_agents_added_or_removed() -> None:
    both = _rdv(agent_ids=[ALICE, INTERVENANT])
    assert [m.recipient_id for m in _plan(None, both) if m.audience == "agent"] == [ALICE]
    swapped = _plan(_rdv(agent_ids=[ALICE]), _rdv(agent_ids=[BOB]), author="carol")
    assert [(m.recipient_id, m.kind) for m in swapped if m.audience == "agent"] == [
        (ALICE, "cancelled"),
        (BOB, "created"),
    ]


def test_reminders_follow_the_rdv() -> None:
    organisation = Organisation(1)
    assert reminders(_rdv(), organisation, NOW) == _usager("reminder")
    assert reminders(_rdv(status="revoked"), organisation, NOW) == []
    assert reminders(None, organisation, NOW) == []
    assert reminders(_rdv(day=3), organisation, NOW) == []  # booked less than 48 h ahead
