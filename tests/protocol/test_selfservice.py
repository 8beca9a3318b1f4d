"""The usagers' self-service page over real HTTP: the "Infos et annulation"
link read from the confirmation email (a real SMTP server), the three
letters, cancelling and moving through the one booking check, the 4-hour
limit, rate limits, CSRF, and what a CalDAV client and the notifications
see afterwards.  One server per database for the module; each test books
its own usager on its own slot."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import caldav
import httpx
import icalendar
import pytest
import sqlalchemy

from calserver.web.throttle import PageLimits
from tests.notifications.fakes import (
    SmsProvider,
    SmtpServer,
    wait_for,
)
from tests.protocol.notified_office import Stack, notified_office
from tests.protocol.pmi_office import ok
from tests.protocol.visitor import Visitor, text_of

PARIS = ZoneInfo("Europe/Paris")
LINK = re.compile(r"(/r/(\d+)/([A-Z0-9]{8}))")
_numbers = itertools.count(10)
USAGERS: list[dict] = []


@pytest.fixture(scope="module")
def stack(
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    fakes: tuple[SmtpServer, SmsProvider],
) -> Iterator[Stack]:
    with notified_office(
        module_database_url,
        tmp_path_factory.mktemp("selfservice"),
        fakes,
        motif={"bookable_by": "everyone", "usager_can_move": True},
        organisation={"contact_email": "pmi@mairie.fr"},
    ) as stack:
        yield stack


def _usager(stack: Stack, last_name: str) -> dict:
    number = next(_numbers)
    values = {
        "first_name": "Camille",
        "last_name": last_name,
        "email": f"u{number}-{stack.office.server.url[-5:]}@usagers.example.org",
        "phone": f"06 12 34 56 {number:02d}",
    }
    with stack.office.client() as admin:
        made = ok(admin.post(f"/organisations/{stack.office.org}/usagers", json=values), 201)
    USAGERS.append(made)
    return made


def _at(stack: Stack, weekday: int, hour_minute: str) -> str:
    return f"{(stack.day + timedelta(days=weekday)).isoformat()}T{hour_minute}"


def _book(stack: Stack, starts_at: str, usager: int, agent: int | None = None) -> dict:
    with stack.office.client("bob") as bob:
        return ok(
            bob.post(
                "/rdvs",
                json={
                    "agent_id": agent or stack.office.alice,
                    "motif_id": stack.office.motif,
                    "lieu_id": stack.office.lieu,
                    "starts_at": starts_at,
                    "usager_ids": [usager],
                },
            ),
            201,
        )


def _mails(stack: Stack, address: str, count: int) -> list[EmailMessage]:
    return wait_for(lambda: (m := stack.smtp.mailbox.to(address)) and len(m) >= count and m)  # type: ignore[return-value]


def _link(message: EmailMessage) -> str:
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    found = LINK.search(text.get_content())  # type: ignore[attr-defined]
    assert found is not None
    return found.group(1)


def _booked_with_link(
    stack: Stack, starts_at: str, last_name: str = "Durand"
) -> tuple[dict, dict, str]:
    usager = _usager(stack, last_name)
    rdv = _book(stack, starts_at, usager["id"])
    return usager, rdv, _link(_mails(stack, usager["email"], 1)[0])


def _opened(stack: Stack, link: str, letters: str = "dur") -> Visitor:
    visitor = Visitor(stack.office.server)
    assert visitor.get(link).status_code == 200
    answer = visitor.post(link, {"lettres": letters})
    assert answer.status_code == 303 and answer.headers["Location"] == link
    return visitor


def _caldav_event(stack: Stack, uid: str) -> str:
    with caldav.DAVClient(
        stack.office.server.dav, username="alice", password="alice-password"
    ) as client:
        calendar = client.calendar(url=f"{stack.office.server.dav}alice/rdv/")
        return calendar.event_by_uid(uid).data


def _api_rdv(stack: Stack, uid: str) -> dict:
    with stack.office.client("alice") as alice:
        return ok(alice.get(f"/agents/{stack.office.alice}/rdvs/{uid}"))


def test_the_letters_open_the_summary(stack: Stack) -> None:
    usager, rdv, link = _booked_with_link(stack, _at(stack, 0, "09:00"), "Le Hénaff")
    visitor = Visitor(stack.office.server)
    form = visitor.get(link)
    assert form.status_code == 200
    assert "trois premières lettres" in text_of(form)
    assert "Hénaff" not in form.text and "Consultation" not in form.text
    assert form.headers["Cache-Control"] == "no-store"
    wrong = visitor.post(link, {"lettres": "dur"})
    assert wrong.status_code == 422 and "ne correspondent pas" in text_of(wrong)
    assert 'role="alert"' in wrong.text and 'aria-invalid="true"' in wrong.text
    right = visitor.post(link, {"lettres": " l é H "})
    assert right.status_code == 303 and right.headers["Location"] == link
    summary = visitor.get(link)
    assert summary.status_code == 200
    said = text_of(summary)
    local = datetime.fromisoformat(rdv["starts_at"]).astimezone(PARIS)
    for expected in (
        "Consultation",
        f"{local.day} ",
        "9h00",
        "Sur place",
        "Mairie annexe",
        "1 place de la Mairie, 75011 Paris",
        "Apportez le carnet de santé.",
        "01 40 00 00 00",
        "pmi@mairie.fr",
        "Annuler le rendez-vous",
        "Déplacer le rendez-vous",
    ):
        assert expected in said, expected
    # The page never shows the usager's own identity, nor anybody else's.
    for private in (usager["last_name"], usager["email"], "Durand"):
        assert private not in summary.text
    # Another browser still needs the letters.
    with Visitor(stack.office.server) as other:
        assert "trois premières lettres" in text_of(other.get(link))


def test_unknown_expired_and_malformed_links_are_404(stack: Stack) -> None:
    _, rdv, link = _booked_with_link(stack, _at(stack, 0, "09:30"))
    item, token = LINK.match(link).group(2, 3)  # type: ignore[union-attr]
    wrong_token = "A" * 8 if token != "A" * 8 else "B" * 8
    with Visitor(stack.office.server) as visitor:
        for path in (
            f"/r/{item}/{wrong_token}",
            f"/r/{int(item) + 100000}/{token}",
            f"/r/{item}/{token[:7]}",
            f"/r/{item}/{token}0",
            f"/r/x{item}/{token}",
            f"/r/{item}/%00{token[:7]}",
            f"/r/99999999999999999999/{token}",
        ):
            answer = visitor.get(path)
            assert answer.status_code == 404, path
            assert "Page introuvable" in answer.text
        # Lower case is the same token (typed from an SMS).
        assert visitor.get(f"/r/{item}/{token.lower()}").status_code == 200
    engine = sqlalchemy.create_engine(stack.office.server.database_url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE rdv_links SET expires_ms = 1000 WHERE item_id = :item"),
            {"item": int(item)},
        )
    engine.dispose()
    with Visitor(stack.office.server) as visitor:
        assert visitor.get(link).status_code == 404
        assert visitor.post(link, {"lettres": "dur"}).status_code in (403, 404)


def test_wrong_letters_are_rate_limited_per_link_and_per_address(stack: Stack) -> None:
    _, _, link = _booked_with_link(stack, _at(stack, 0, "10:00"))
    # Ten tries on one link from ten addresses: the link's own count.
    for _ in range(10):
        with Visitor(stack.office.server) as visitor:
            visitor.get(link)
            assert visitor.post(link, {"lettres": "xyz"}).status_code == 422
    with Visitor(stack.office.server) as visitor:
        visitor.get(link)
        refused = visitor.post(link, {"lettres": "dur"})  # even the right letters now
        assert refused.status_code == 429
        assert "trop de tentatives" in text_of(refused).lower()
        assert int(refused.headers["Retry-After"]) > 0
    # One address knocking on links: its own count, whatever the links (set
    # high: many usagers may share an address).
    allowed = PageLimits().guesses.per_address.allowed
    _, _, fresh = _booked_with_link(stack, _at(stack, 4, "09:00"))
    with Visitor(stack.office.server) as visitor:
        for n in range(allowed):
            assert visitor.get(f"/r/{n + 1}/ZZZZZZZZ").status_code == 404
        assert visitor.get(fresh).status_code == 200
        assert visitor.post(fresh, {"lettres": "dur"}).status_code == 429
        assert visitor.get("/r/1/ZZZZZZZZ").status_code == 429
    # The link's own count was untouched: another address gets in.
    _opened(stack, fresh)


def test_cancel_is_excused_in_caldav_and_told_by_email_only(stack: Stack) -> None:
    usager, rdv, link = _booked_with_link(stack, _at(stack, 1, "09:00"))
    phone = "+33" + usager["phone"].replace(" ", "")[1:]
    wait_for(lambda: len(stack.sms.to(phone)) >= 1)
    visitor = _opened(stack, link)
    confirm = visitor.get(link + "/annuler")
    assert confirm.status_code == 200 and "Confirmer l'annulation" in text_of(confirm)
    # A forged form (no token, another session's token) changes nothing.
    assert visitor.post(link + "/annuler", csrf="").status_code == 403
    with Visitor(stack.office.server) as forger:
        forger.get("/r/0/AAAAAAAA")
        assert visitor.post(link + "/annuler", csrf=forger.csrf or "x" * 40).status_code == 403
    assert _api_rdv(stack, rdv["id"])["status"] == "unknown"
    done = visitor.post(link + "/annuler")
    assert done.status_code == 303 and done.headers["Location"] == f"{link}?fait=annule"
    summary = visitor.get(done.headers["Location"])
    assert summary.status_code == 200
    said = text_of(summary)
    assert "Votre rendez-vous est annulé" in said and "Annulé à votre demande" in said
    assert "Annuler le rendez-vous" not in said
    text = _caldav_event(stack, rdv["id"])
    assert "X-CALSERVER-STATUS:excused" in text and "STATUS:CANCELLED" in text
    assert _api_rdv(stack, rdv["id"])["sequence"] > rdv["sequence"]
    notice = _mails(stack, usager["email"], 2)[1]
    assert "annulé" in notice["Subject"]
    # The usager cancelled: an email, no SMS (planned in the change's
    # transaction: no row means none will ever leave).
    with stack.office.client("alice") as alice:
        log = ok(alice.get(f"/agents/{stack.office.alice}/rdvs/{rdv['id']}/notifications"))
    told = {(r["channel"], r["template"]) for r in log["receipts"]}
    told |= {(w["channel"], f"{w['audience']}_{w['kind']}") for w in log["waiting"]}
    assert ("email", "usager_cancelled") in told
    assert ("sms", "usager_cancelled") not in told
    assert len(stack.sms.to(phone)) == 1
    # Twice is refused, with the reason.
    again = visitor.post(link + "/annuler")
    assert again.status_code == 422 and "déjà annulé" in text_of(again)


def test_move_through_the_booking_check(stack: Stack) -> None:
    usager, rdv, link = _booked_with_link(stack, _at(stack, 2, "09:00"))
    other = _usager(stack, "Martin")
    for agent in (stack.office.alice, stack.office.bob):  # 10:00 taken with both agents
        _book(stack, _at(stack, 2, "10:00"), other["id"], agent)
    visitor = _opened(stack, link)
    day = (stack.day + timedelta(days=2)).isoformat()
    week = visitor.get(f"{link}/deplacer?semaine={day}")
    assert week.status_code == 200
    slots = set(re.findall(r"creneau=([0-9T:-]+)", week.text))
    assert f"{day}T09:30" in slots and f"{day}T10:30" in slots
    assert f"{day}T10:00" not in slots  # taken with both agents
    assert f"{day}T09:00" not in slots  # its own start, although bob is free then
    confirm = visitor.get(f"{link}/deplacer/confirmer?creneau={day}T10:30")
    assert confirm.status_code == 200 and "10h30" in text_of(confirm)
    # A slot someone holds, one off the grid, one past the motif's delays.
    taken = visitor.post(f"{link}/deplacer/confirmer", {"creneau": f"{day}T10:00"})
    assert taken.status_code == 409 and "pris" in text_of(taken)
    off_grid = visitor.post(f"{link}/deplacer/confirmer", {"creneau": f"{day}T11:10"})
    assert off_grid.status_code == 422 and "plus disponible" in text_of(off_grid)
    far = (stack.day + timedelta(days=2 + 7 * 30)).isoformat()
    assert (
        visitor.post(f"{link}/deplacer/confirmer", {"creneau": f"{far}T09:00"}).status_code == 422
    )
    assert visitor.post(f"{link}/deplacer/confirmer", {"creneau": "demain"}).status_code == 400
    assert (
        visitor.post(
            f"{link}/deplacer/confirmer", {"creneau": f"{day}T10:30"}, csrf="x"
        ).status_code
        == 403
    )
    assert _api_rdv(stack, rdv["id"])["starts_at"] == rdv["starts_at"]
    moved = visitor.post(f"{link}/deplacer/confirmer", {"creneau": f"{day}T10:30"})
    assert moved.status_code == 303 and moved.headers["Location"] == f"{link}?fait=deplace"
    summary = text_of(visitor.get(moved.headers["Location"]))
    assert "Votre rendez-vous est déplacé" in summary and "10h30" in summary
    after = _api_rdv(stack, rdv["id"])
    assert after["starts_at"].startswith(f"{day}T10:30") and after["sequence"] > rdv["sequence"]
    assert after["status"] == "unknown"
    (vevent,) = icalendar.Calendar.from_ical(_caldav_event(stack, rdv["id"])).walk("VEVENT")
    assert vevent.decoded("DTSTART").astimezone(PARIS).strftime("%H:%M") == "10:30"
    assert int(vevent["SEQUENCE"]) == after["sequence"]
    notice = _mails(stack, usager["email"], 2)[1]
    assert "modifié" in notice["Subject"]


def _rdv_of(stack: Stack, login: str, agent: int, uid: str) -> httpx.Response:
    with stack.office.client(login) as client:
        return client.get(f"/agents/{agent}/rdvs/{uid}")


def _agenda_uids(stack: Stack, login: str) -> set[str]:
    with caldav.DAVClient(
        stack.office.server.dav, username=login, password=f"{login}-password"
    ) as client:
        calendar = client.calendar(url=f"{stack.office.server.dav}{login}/rdv/")
        return {str(e.icalendar_component["UID"]) for e in calendar.events()}


def _agent_notices(stack: Stack, address: str, uid: str) -> list[tuple[str, str]]:
    """(METHOD, local start) of the agent emails about this RDV, in order."""
    found = []
    for message in stack.smtp.mailbox.to(address):
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
        (vevent,) = calendar.walk("VEVENT")
        if str(vevent["UID"]) == uid:
            start = vevent.decoded("DTSTART").astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
            found.append((str(calendar["METHOD"]), start))
    return found


def test_a_move_goes_to_another_agent_free_at_that_time(stack: Stack) -> None:
    agents = {"alice": stack.office.alice, "bob": stack.office.bob}
    addresses = {login: f"{login}-move@agents.example.org" for login in agents}
    with stack.office.client() as admin:
        for login, agent in agents.items():
            path = f"/organisations/{stack.office.org}/agents/{agent}"
            ok(admin.patch(path, json={"email": addresses[login]}))
    try:
        usager, rdv, link = _booked_with_link(stack, _at(stack, 4, "10:00"), "Moreau")
        _book(stack, _at(stack, 4, "11:00"), _usager(stack, "Petit")["id"])  # alice busy
        visitor = _opened(stack, link, "mor")
        day = (stack.day + timedelta(days=4)).isoformat()
        week = visitor.get(f"{link}/deplacer?semaine={day}")
        assert f"{day}T11:00" in set(re.findall(r"creneau=([0-9T:-]+)", week.text))
        moved = visitor.post(f"{link}/deplacer/confirmer", {"creneau": f"{day}T11:00"})
        assert moved.status_code == 303 and moved.headers["Location"] == f"{link}?fait=deplace"
        summary = text_of(visitor.get(moved.headers["Location"]))  # the same link still opens it
        assert "Votre rendez-vous est déplacé" in summary and "11h00" in summary

        assert _rdv_of(stack, "alice", stack.office.alice, rdv["id"]).status_code == 404
        after = ok(_rdv_of(stack, "bob", stack.office.bob, rdv["id"]))
        assert after["starts_at"].startswith(f"{day}T11:00") and after["status"] == "unknown"
        assert after["usager_ids"] == [usager["id"]] and after["sequence"] > rdv["sequence"]
        assert rdv["id"] not in _agenda_uids(stack, "alice")
        assert rdv["id"] in _agenda_uids(stack, "bob")
        assert "modifié" in _mails(stack, usager["email"], 2)[1]["Subject"]
        # bob is told of an RDV at 11:00; alice, who held it, of its cancellation.
        assert wait_for(lambda: _agent_notices(stack, addresses["bob"], rdv["id"])) == [
            ("REQUEST", f"{day}T11:00")
        ]
        told = wait_for(
            lambda: (
                (n := _agent_notices(stack, addresses["alice"], rdv["id"]))
                and n[-1][0] == "CANCEL"
                and n
            )
        )
        assert told[-1] == ("CANCEL", f"{day}T10:00")
        assert all(method == "REQUEST" for method, _ in told[:-1])
    finally:
        with stack.office.client() as admin:
            for agent in agents.values():
                path = f"/organisations/{stack.office.org}/agents/{agent}"
                ok(admin.patch(path, json={"email": None}))


def test_a_motif_without_online_moves_offers_none(stack: Stack) -> None:
    _, _, link = _booked_with_link(stack, _at(stack, 3, "09:00"))
    with stack.office.client() as admin:
        path = f"/organisations/{stack.office.org}/motifs/{stack.office.motif}"
        ok(admin.patch(path, json={"usager_can_move": False, "usager_can_cancel": False}))
    try:
        visitor = _opened(stack, link)
        said = text_of(visitor.get(link))
        assert "Déplacer" not in said and "Annuler le rendez-vous" not in said
        no_move = visitor.get(link + "/deplacer")
        assert no_move.status_code == 422 and "ne peut pas être déplacé" in text_of(no_move)
        no_cancel = visitor.post(link + "/annuler")  # through the booking check
        assert no_cancel.status_code == 422 and "ne peut pas être annulé" in text_of(no_cancel)
    finally:
        with stack.office.client() as admin:
            ok(admin.patch(path, json={"usager_can_move": True, "usager_can_cancel": True}))


def _soon(now: datetime) -> datetime:
    """A start 1 to 3 hours ahead whose 30 minutes end the same local day."""
    for hours in (1, 3):
        start = now + timedelta(hours=hours)
        start = start.replace(second=0, microsecond=0) + timedelta(minutes=5 - start.minute % 5)
        local = start.astimezone(PARIS)
        if (local + timedelta(minutes=30)).date() == local.date():
            return local
    raise AssertionError("unreachable: one of the two fits")


def test_the_four_hour_limit(stack: Stack) -> None:
    start = _soon(datetime.now(UTC))
    with stack.office.client() as admin:
        plage = {
            "motif_ids": [stack.office.motif],
            "lieu_id": stack.office.lieu,
            "first_day": start.date().isoformat(),
            "start_time": "00:00",
            "end_time": "23:59",
        }
        ok(admin.post(f"/agents/{stack.office.bob}/plages", json=plage), 201)
    usager = _usager(stack, "Durand")
    with stack.office.client("bob") as bob:
        rdv = ok(
            bob.post(
                "/rdvs",
                json={
                    "agent_id": stack.office.bob,
                    "motif_id": stack.office.motif,
                    "lieu_id": stack.office.lieu,
                    "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                    "usager_ids": [usager["id"]],
                },
            ),
            201,
        )
    link = _link(_mails(stack, usager["email"], 1)[0])
    visitor = _opened(stack, link)
    said = text_of(visitor.get(link))
    assert "moins de 4 heures" in said and "Annuler le rendez-vous" not in said
    refused = visitor.post(link + "/annuler")
    assert refused.status_code == 422 and "moins de 4 heures" in text_of(refused)
    assert visitor.get(link + "/deplacer").status_code == 422
    with stack.office.client("bob") as bob:
        assert ok(bob.get(f"/agents/{stack.office.bob}/rdvs/{rdv['id']}"))["status"] == "unknown"


def test_a_session_opens_one_rdv_only(stack: Stack) -> None:
    _, _, first = _booked_with_link(stack, _at(stack, 3, "10:00"))
    second_usager, _, second = _booked_with_link(stack, _at(stack, 3, "10:30"), "Bernard")
    visitor = _opened(stack, first)
    page = visitor.get(second)
    assert page.status_code == 200 and "trois premières lettres" in text_of(page)
    assert visitor.get(second + "/annuler").status_code == 303
    assert visitor.post(second + "/annuler").status_code == 303  # back to the letters
    with stack.office.client("alice") as alice:
        found = ok(alice.get(f"/agents/{stack.office.alice}/rdvs"))
    assert all(r["status"] == "unknown" for r in found if second_usager["id"] in r["usager_ids"])


def test_the_log_holds_no_usager_and_no_token(stack: Stack) -> None:
    log = stack.office.server.log()
    for usager in USAGERS:
        for private in (usager["last_name"], usager["email"]):
            assert private not in log
    for token in re.findall(
        r"/r/\d+/([A-Z0-9]{8})", "".join(m.as_string() for m in stack.smtp.mailbox.messages)
    ):
        assert token not in log


def test_pages_answer_in_french_without_a_stack_trace(stack: Stack) -> None:
    with Visitor(stack.office.server) as visitor:
        answer = visitor.client.post(
            "/r/1/AAAAAAAA",
            content=b"\xff\xfe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code in (400, 403)
        assert "Traceback" not in answer.text
        assert httpx.codes.is_error(visitor.get("/r/1/AAAAAAAA/deplacer?semaine=bad").status_code)


def test_two_usagers_moving_to_one_slot_get_it_once(stack: Stack) -> None:
    _, first, first_link = _booked_with_link(stack, _at(stack, 1, "10:00"))
    _, second, second_link = _booked_with_link(stack, _at(stack, 1, "10:30"))
    # bob busy then: alice is the one agent free for the slot both want.
    _book(stack, _at(stack, 1, "11:30"), _usager(stack, "Roux")["id"], stack.office.bob)
    visitors = [_opened(stack, first_link), _opened(stack, second_link)]
    for visitor, link in zip(visitors, (first_link, second_link), strict=True):
        assert visitor.get(link).status_code == 200
    wanted = {"creneau": _at(stack, 1, "11:30")}
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda pair: pair[0].post(f"{pair[1]}/deplacer/confirmer", wanted),
                zip(visitors, (first_link, second_link), strict=True),
            )
        )
    assert sorted(a.status_code for a in answers) == [303, 409]
    starts = [_api_rdv(stack, rdv["id"])["starts_at"][:16] for rdv in (first, second)]
    assert starts.count(wanted["creneau"]) == 1
