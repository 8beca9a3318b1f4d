"""Notifications end to end: a real server sends through a real SMTP server
(aiosmtpd) and a local SMS provider on loopback.  One server per database
for the module; each test books on its own weekday with its own usagers.

Booking, moving and cancelling, through the API and through a CalDAV
client, each notify the usager (email with ICS, SMS) and the agents per
their preference; a refused write notifies nobody; SMTP down then up
delivers after a retry; the receipts are read through the API; and the
server's log holds no usager's name, email or phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from booking.model import Organisation
from booking.reminders import reminder_moment
from tests.conftest import run_cli
from tests.ics import event
from tests.notifications.fakes import (
    SmsProvider,
    SmtpServer,
    wait_for,
)
from tests.protocol.notified_office import Stack, notified_office
from tests.protocol.pmi_office import ok

PARIS = ZoneInfo("Europe/Paris")
ALICE_EMAIL = "alice@agents.example.org"
USAGERS: list[dict] = []  # every usager made here: the log must name none


@pytest.fixture(scope="module")
def stack(
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    fakes: tuple[SmtpServer, SmsProvider],
) -> Iterator[Stack]:
    with notified_office(
        module_database_url, tmp_path_factory.mktemp("notifications"), fakes
    ) as stack:
        office = stack.office
        with office.client() as admin:
            for agent, address in ((office.alice, ALICE_EMAIL), (office.bob, None)):
                ok(
                    admin.patch(
                        f"/organisations/{office.org}/agents/{agent}", json={"email": address}
                    )
                )
        yield stack


def _usager(stack: Stack, tag: str, phone: str | None = "06 12 34 56 00", **kw: object) -> dict:
    values = {
        "first_name": f"Prénom{tag}",
        "last_name": f"Nom{tag}",
        "email": f"{tag.lower()}-{stack.office.server.url[-5:]}@usagers.example.org",
        "phone": phone,
        **kw,
    }
    with stack.office.client() as admin:
        made = ok(admin.post(f"/organisations/{stack.office.org}/usagers", json=values), 201)
    USAGERS.append(made)
    return made


def _at(stack: Stack, weekday: int, hour_minute: str) -> str:
    return f"{(stack.day + timedelta(days=weekday)).isoformat()}T{hour_minute}"


def _book(
    stack: Stack, weekday: int, hour_minute: str, usager: int, **kw: object
) -> httpx.Response:
    with stack.office.client("bob") as bob:
        return bob.post(
            "/rdvs",
            json={
                "agent_id": stack.office.alice,
                "motif_id": stack.office.motif,
                "lieu_id": stack.office.lieu,
                "starts_at": _at(stack, weekday, hour_minute),
                "usager_ids": [usager],
                **kw,
            },
        )


def _mails(stack: Stack, address: str, count: int) -> list[EmailMessage]:
    return wait_for(lambda: (m := stack.smtp.mailbox.to(address)) and len(m) >= count and m)  # type: ignore[return-value]


def _texts(stack: Stack, number: str, count: int) -> list[dict]:
    return wait_for(lambda: (m := stack.sms.to(number)) and len(m) >= count and m)  # type: ignore[return-value]


def _parts(message: EmailMessage) -> dict[str, EmailMessage]:
    return {p.get_content_type(): p for p in message.walk()}  # type: ignore[misc]


def _vevent(message: EmailMessage) -> tuple[str, icalendar.Event]:
    raw = _parts(message)["text/calendar"].get_payload(decode=True)
    calendar = icalendar.Calendar.from_ical(raw)
    (vevent,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), vevent


def _local(vevent: icalendar.Event) -> str:
    return vevent.decoded("DTSTART").astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def _agent_mails_of(stack: Stack, uid: str) -> list[EmailMessage]:
    return [m for m in stack.smtp.mailbox.to(ALICE_EMAIL) if str(_vevent(m)[1]["UID"]) == uid]


def _notifications(stack: Stack, rdv_uid: str) -> dict:
    with stack.office.client("alice") as alice:
        return ok(alice.get(f"/agents/{stack.office.alice}/rdvs/{rdv_uid}/notifications"))


def test_booking_moving_and_cancelling_over_the_api(stack: Stack) -> None:
    usager = _usager(stack, "Api", "06 12 34 56 01")
    rdv = ok(_book(stack, 0, "09:00", usager["id"]), 201)
    (confirmation,) = _mails(stack, usager["email"], 1)
    assert confirmation["Subject"].startswith("Votre RDV du lundi ")
    assert confirmation["Subject"].endswith("à 09h00 est confirmé")
    assert confirmation["From"] == "rdv@mairie.example.fr"
    text = _parts(confirmation)["text/plain"].get_content()
    html = _parts(confirmation)["text/html"].get_content()
    for said in ("Consultation", "Mairie annexe, 1 place de la Mairie, 75011 Paris",
                 "Apportez le carnet de santé.", "01 40 00 00 00"):  # fmt: skip
        assert said in text and said in html
    link = re.search(rf"{stack.office.server.url}/r/\d+/[A-Z0-9]{{8}}", text)
    assert link is not None and f'href="{link.group()}"' in html
    method, vevent = _vevent(confirmation)
    uid = str(vevent["UID"])
    assert method == "PUBLISH" and uid.endswith("@calserver") and rdv["id"] not in uid
    assert int(vevent["SEQUENCE"]) == rdv["sequence"] and vevent["STATUS"] == "CONFIRMED"
    assert _local(vevent) == _at(stack, 0, "09:00")
    assert _parts(confirmation)["application/ics"].get_filename() == "rdv.ics"
    (sms,) = _texts(stack, "+33612345601", 1)
    assert sms["sender"] == "MAIRIE" and sms["text"].startswith("RDV Consultation le lun. ")
    assert f"Infos et annulation : {link.group()} / 01 40 00 00 00" in sms["text"]
    # alice prefers "others" (the default) and bob booked: she is told.
    # Her invitation names the event of her CalDAV agenda (the API's id is its UID).
    (agent_mail,) = wait_for(lambda: _agent_mails_of(stack, rdv["id"]))  # type: ignore[misc]
    method, agent_event = _vevent(agent_mail)
    assert method == "REQUEST" and str(agent_event["ATTENDEE"]) == f"mailto:{ALICE_EMAIL}"
    assert int(agent_event["SEQUENCE"]) == rdv["sequence"]
    assert usager["last_name"] not in agent_mail.as_string()
    waiting = _notifications(stack, rdv["id"])["waiting"]
    expected = reminder_moment(
        datetime.fromisoformat(rdv["starts_at"]), Organisation(stack.office.org), datetime.now(UTC)
    )
    assert expected is not None
    assert sorted(w["channel"] for w in waiting if w["kind"] == "reminder") == ["email", "sms"]
    assert {datetime.fromisoformat(w["due_at"]) for w in waiting} == {expected}

    url = f"/agents/{stack.office.alice}/rdvs/{rdv['id']}"
    with stack.office.client("bob") as bob:
        moved = ok(bob.patch(url, json={"starts_at": _at(stack, 0, "10:00")}))
    changed = _mails(stack, usager["email"], 2)[1]
    assert "modifié" in changed["Subject"]
    method, vevent = _vevent(changed)
    assert (method, str(vevent["UID"])) == ("PUBLISH", uid)
    assert int(vevent["SEQUENCE"]) == moved["sequence"] > rdv["sequence"]
    assert _local(vevent) == _at(stack, 0, "10:00")
    assert _texts(stack, "+33612345601", 2)[1]["text"].startswith("RDV modifié : Consultation")
    assert len(wait_for(lambda: len(_agent_mails_of(stack, rdv["id"])) >= 2 and 1) and
               _agent_mails_of(stack, rdv["id"])) == 2  # fmt: skip

    with stack.office.client("bob") as bob:
        cancelled = ok(bob.delete(url))
    notice = _mails(stack, usager["email"], 3)[2]
    assert "annulé" in notice["Subject"]
    method, vevent = _vevent(notice)
    assert (method, vevent["STATUS"], int(vevent["SEQUENCE"])) == (
        "CANCEL", "CANCELLED", cancelled["sequence"]
    )  # fmt: skip
    assert "annulé" in _texts(stack, "+33612345601", 3)[2]["text"]
    last = wait_for(
        lambda: len(_agent_mails_of(stack, rdv["id"])) >= 3 and _agent_mails_of(stack, rdv["id"])
    )
    assert _vevent(last[2])[0] == "CANCEL"  # type: ignore[index]

    log = _notifications(stack, rdv["id"])
    assert log["waiting"] == []  # the reminders went with the RDV
    receipts = log["receipts"]
    assert {(r["channel"], r["template"], r["status"]) for r in receipts} >= {
        ("email", "usager_created", "sent"),
        ("sms", "usager_updated", "sent"),
        ("email", "usager_cancelled", "sent"),
        ("email", "agent_created", "sent"),
    }
    recipients = {r["recipient"] for r in receipts}
    assert "+33*******01" in recipients and "a***@agents.example.org" in recipients
    assert usager["email"] not in recipients
    assert all(r["provider_id"] for r in receipts)


def _caldav_rdv(
    stack: Stack, uid: str, hour: int, usager: int, weekday: int = 1, minute: int = 0
) -> str:
    day = stack.day + timedelta(days=weekday)
    start = datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=minute)
    extra = (
        f"X-CALSERVER-MOTIF:{stack.office.motif}\r\nX-CALSERVER-LIEU:{stack.office.lieu}\r\n"
        f"X-CALSERVER-USAGER:{usager}"
    )
    return event(uid, start, extra=extra)


def test_booking_moving_and_deleting_through_a_caldav_client(stack: Stack) -> None:
    usager = _usager(stack, "Dav", "06 12 34 56 02")
    url = stack.office.server.dav + "alice/rdv/dav-notified.ics"
    with httpx.Client(auth=("alice", "alice-password"), timeout=30) as dav:
        headers = {"Content-Type": "text/calendar"}
        put = dav.put(
            url, content=_caldav_rdv(stack, "dav-notified", 9, usager["id"]), headers=headers
        )
        assert put.status_code == 201, put.text
        assert "est confirmé" in _mails(stack, usager["email"], 1)[0]["Subject"]
        put = dav.put(
            url, content=_caldav_rdv(stack, "dav-notified", 10, usager["id"]), headers=headers
        )
        assert put.status_code == 204, put.text
        changed = _mails(stack, usager["email"], 2)[1]
        assert "modifié" in changed["Subject"] and _local(_vevent(changed)[1]).endswith("T10:00")
        assert dav.delete(url).status_code in (200, 204)
        notice = _mails(stack, usager["email"], 3)[2]
    assert _vevent(notice)[0] == "CANCEL"
    # A DELETE bumps no SEQUENCE itself: the CANCEL still supersedes the last REQUEST.
    assert int(_vevent(notice)[1]["SEQUENCE"]) > int(_vevent(changed)[1]["SEQUENCE"])
    assert [t["text"].split(" ")[1] for t in _texts(stack, "+33612345602", 3)] == [
        "Consultation", "modifié", "Consultation"
    ]  # fmt: skip
    # alice wrote it herself and prefers "others": no email for her.
    assert _agent_mails_of(stack, "dav-notified") == []


def test_a_refused_write_notifies_nobody(stack: Stack) -> None:
    refused, witness = _usager(stack, "Refused", "06 12 34 56 03"), _usager(stack, "Witness")
    assert _book(stack, 2, "14:00", refused["id"]).status_code == 422  # outside the plage
    with httpx.Client(auth=("alice", "alice-password"), timeout=30) as dav:
        bad = _caldav_rdv(stack, "dav-refused", 14, refused["id"])
        answer = dav.put(stack.office.server.dav + "alice/rdv/refused.ics", content=bad)
        assert answer.status_code == 403
    ok(_book(stack, 2, "09:00", witness["id"]), 201)
    _mails(stack, witness["email"], 1)  # the worker has been through what came before
    assert stack.smtp.mailbox.to(refused["email"]) == []
    assert stack.sms.to("+33612345603") == []


def test_smtp_down_then_up_delivers_after_a_retry(stack: Stack) -> None:
    usager = _usager(stack, "Retry", phone=None)
    stack.smtp.stop()
    try:
        rdv = ok(_book(stack, 3, "09:00", usager["id"]), 201)
        wait_for(
            lambda: any(
                r["status"] == "retry" and r["template"] == "usager_created"
                for r in _notifications(stack, rdv["id"])["receipts"]
            )
        )
    finally:
        stack.smtp.start()
    (mail,) = _mails(stack, usager["email"], 1)
    assert "est confirmé" in mail["Subject"]
    receipts = _notifications(stack, rdv["id"])["receipts"]
    emails = [r for r in receipts if r["template"] == "usager_created" and r["channel"] == "email"]
    statuses = [r["status"] for r in reversed(emails)]
    assert statuses[0] == "retry" and statuses[-1] == "sent"
    assert "SMTP connection failed" in emails[-1]["error"]
    sms = [r for r in receipts if r["channel"] == "sms"]
    assert [(r["status"], r["error"]) for r in sms] == [("skipped", "no phone number")]


def test_the_switch_and_the_usagers_choices(stack: Stack) -> None:
    quiet = _usager(stack, "Quiet", "06 12 34 56 04")
    rdv = ok(_book(stack, 4, "09:00", quiet["id"], notify_usagers=False), 201)
    assert rdv["notify_usagers"] is False
    witness = _usager(stack, "EmailOnly", "06 12 34 56 05", notify_by_sms=False)
    landline = _usager(stack, "Landline", "01 45 00 00 00")
    second = ok(_book(stack, 4, "10:00", witness["id"]), 201)
    third = ok(_book(stack, 4, "11:00", landline["id"]), 201)
    _mails(stack, witness["email"], 1)
    _mails(stack, landline["email"], 1)
    assert stack.smtp.mailbox.to(quiet["email"]) == [] and stack.sms.to("+33612345604") == []
    assert stack.sms.to("+33612345605") == []
    assert _notifications(stack, rdv["id"])["waiting"] == []  # no reminder either
    skipped = {
        r["error"]
        for uid in (second["id"], third["id"])
        for r in _notifications(stack, uid)["receipts"]
        if r["channel"] == "sms"
    }
    assert skipped == {"the usager turned SMS off", "not a mobile number"}


def test_agents_set_their_preference_through_the_api(stack: Stack) -> None:
    url = f"/agents/{stack.office.alice}/notification_settings"
    with stack.office.client("alice") as alice:
        assert ok(alice.get(url)) == {"rdv_notifications_level": "others"}
        assert (
            ok(alice.patch(url, json={"rdv_notifications_level": "none"}))[
                "rdv_notifications_level"
            ]
            == "none"
        )
        assert alice.patch(url, json={"rdv_notifications_level": "sometimes"}).status_code == 422
        assert ok(alice.patch(url, json={"rdv_notifications_level": "others"}))
    with stack.office.client("bob") as bob:
        assert bob.get(url).status_code == 403


def test_calserver_import_keeps_reminders_but_tells_nobody(stack: Stack, tmp_path: Path) -> None:
    usager = _usager(stack, "Imported", "06 12 34 56 06")
    folder = tmp_path / "ics"
    folder.mkdir()
    # Friday 11:30, a slot no other test takes.
    (folder / "imported.ics").write_text(
        _caldav_rdv(stack, "imported-rdv", 11, usager["id"], 4, 30)
    )
    done = run_cli(stack.office.server.database_url, "import", "alice/rdv", str(folder))
    assert done.returncode == 0, done.stderr
    found = _notifications(stack, "imported-rdv")
    assert found["receipts"] == []
    assert sorted((w["kind"], w["channel"]) for w in found["waiting"]) == [
        ("reminder", "email"),
        ("reminder", "sms"),
    ]


def test_no_usager_data_in_the_server_log(stack: Stack) -> None:
    """A whole cycle (booked, moved, cancelled; email and SMS each time) at
    debug level, then the log searched for every usager this process made
    (under pytest-xdist the module's other tests may run elsewhere)."""
    usager = _usager(stack, "Logged", "06 12 34 56 07")
    rdv = ok(_book(stack, 3, "10:00", usager["id"]), 201)
    _mails(stack, usager["email"], 1)
    url = f"/agents/{stack.office.alice}/rdvs/{rdv['id']}"
    with stack.office.client("bob") as bob:
        ok(bob.patch(url, json={"starts_at": _at(stack, 3, "11:00")}))
        _mails(stack, usager["email"], 2)
        ok(bob.delete(url))
    _mails(stack, usager["email"], 3)
    _texts(stack, "+33612345607", 3)
    # The worker logs its sends once the round's receipts are written, just
    # after the messages arrive.
    log = wait_for(
        lambda: "usager_cancelled" in stack.office.server.log() and stack.office.server.log()
    )
    assert isinstance(log, str)
    for made in USAGERS:
        for field in ("first_name", "last_name", "email", "phone"):
            value = made.get(field)
            if value:
                assert value not in log, field
                assert value.replace(" ", "") not in log, field
    assert "+336123456" not in log
