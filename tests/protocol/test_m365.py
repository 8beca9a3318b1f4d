"""Microsoft 365 push over a real server and the local Graph stand-in (HTTPS,
its own CA): RDVs booked, moved and cancelled through the API and through a
CalDAV client end in the right mailbox state; a dropped response, 429, 503,
an expired token and a refused secret; reconciliation of hand edits.

One server and one Graph per database for the module; each test books on a
day of its own (its own RDVs, its own events), and a test that breaks the
connection mends it before it ends."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import caldav
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from m365.event import PROPERTY_ID, uid_of
from m365.secrets import new_key
from tests.conftest import run_cli, start_server
from tests.dates import working_days
from tests.ics import event
from tests.m365.graph import Fault, GraphServer
from tests.protocol.pmi_office import WEEKDAYS, Office, book_on, ok, set_up

TENANT, CLIENT, SECRET = "tenant-a", "client-a", "secret-a"
ALICE = "alice@pmi.example.org"


@dataclass
class Setup:
    office: Office
    graph: GraphServer
    config: Path

    def connect(self) -> dict:
        with self.office.client() as admin:
            return ok(
                admin.put(
                    f"/organisations/{self.office.org}/m365/connection",
                    json={"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET},
                )
            )

    def connection(self) -> dict:
        with self.office.client() as admin:
            return ok(admin.get(f"/organisations/{self.office.org}/m365/connection"))

    def log(self) -> list[dict]:
        with self.office.client() as admin:
            return ok(
                admin.get(f"/organisations/{self.office.org}/agents/{self.office.alice}/m365/log")
            )

    def ours(self, day: date) -> list[dict]:
        """Alice's events of ours on that day."""
        return [
            e
            for e in self.graph.events(ALICE)
            if uid_of(e) and e["start"]["dateTime"].startswith(day.isoformat())
        ]


@pytest.fixture(scope="module")
def setup(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("m365")
    graph = GraphServer(folder).start()
    graph.register_app(TENANT, CLIENT, SECRET)
    m365 = (
        f"[m365]\nkey = {new_key()}\nauthority_url = {graph.url}\n"
        f"graph_url = {graph.url}/v1.0\nca_bundle = {graph.ca_path}\n"
        "timeout_seconds = 2\nretry_first_ms = 200\n"
    )
    server = start_server(module_database_url, folder, extra_config=m365)
    config = folder / "cli.ini"
    config.write_text(m365)
    office = set_up(server)
    with office.client() as admin:
        ok(admin.patch(f"/organisations/{office.org}/agents/{office.alice}", json={"email": ALICE}))
    found = Setup(office, graph, config)
    found.connect()
    yield found
    server.stop()
    graph.close()


def _day(setup: Setup, weeks: int, weekday: int) -> date:
    """The ``weekday``-th working day of the ``weeks``-th week of five working
    days from the office's first day: never a public holiday, whatever today is."""
    return working_days(setup.office.day, 5 * (weeks + 1))[5 * weeks + weekday]


def _book(setup: Setup, day: date, hhmm: str, usager: int | None = None) -> dict:
    return book_on(setup.office, day, hhmm, usager)


def _rdv_url(setup: Setup, rdv: dict) -> str:
    return f"/agents/{setup.office.alice}/rdvs/{rdv['id']}"


def test_the_connection_is_set_by_admins_and_never_shows_its_secret(setup: Setup) -> None:
    office = setup.office
    url = f"/organisations/{office.org}/m365/connection"
    shown = setup.connect()
    assert shown["state"] == "ok" and shown["tenant_id"] == TENANT
    assert SECRET not in str(shown) and SECRET not in str(setup.connection())
    with office.client("alice") as alice:
        refused = alice.put(url, json={"tenant_id": "t", "client_id": "c", "client_secret": "s"})
        assert refused.status_code == 403
    with office.client() as admin:
        bad = admin.put(url, json={"tenant_id": "a b", "client_id": "c", "client_secret": "s"})
        assert bad.status_code == 422 and "tenant_id" in bad.text
        other = json.dumps({"tenant_id": "t", "client_id": "c", "client_secret": "s"})
        text = admin.put(url, content=other, headers={"Content-Type": "text/plain"})
        assert text.status_code == 415
    assert setup.connection()["tenant_id"] == TENANT


def test_create_move_and_cancel_through_the_api(setup: Setup) -> None:
    day = _day(setup, 0, 0)
    rdv = _book(setup, day, "09:00")
    (created,) = setup.graph.wait(lambda: setup.ours(day))
    assert created["subject"] == "Consultation" and created["attendees"] == []
    assert created["start"] == {"dateTime": f"{day}T09:00:00", "timeZone": "Europe/Paris"}
    assert created["location"]["displayName"].startswith("Mairie annexe")
    public_id = str(uid_of(created)).removesuffix("@calserver")
    assert created["body"]["content"].endswith(f"/backoffice/rdvs/{public_id}")
    post = setup.graph.requests("POST")[-1]
    assert post.headers["Prefer"] == 'IdType="ImmutableId"'
    with setup.office.client("alice") as alice:
        ok(alice.patch(_rdv_url(setup, rdv), json={"starts_at": f"{day}T10:30"}))
    setup.graph.wait(lambda: setup.ours(day)[0]["start"]["dateTime"] == f"{day}T10:30:00")
    assert [e["id"] for e in setup.ours(day)] == [created["id"]]  # patched, not recreated
    with setup.office.client("alice") as alice:
        ok(alice.delete(_rdv_url(setup, rdv)))
    setup.graph.wait(lambda: not setup.ours(day))
    operations = [(e["operation"], e["status"]) for e in setup.log() if e["item_id"]]
    assert {("create", 201), ("update", 200), ("delete", 204)} <= set(operations)
    assert all(e["request_id"] for e in setup.log() if e["status"] in (200, 201, 204))
    with setup.office.client("bob") as bob:
        log = f"/organisations/{setup.office.org}/agents/{setup.office.alice}/m365/log"
        assert bob.get(log).status_code == 403  # only alice and the admins read it


def test_an_rdv_written_by_a_caldav_client(setup: Setup) -> None:
    day = _day(setup, 0, 1)
    office = setup.office
    dav = caldav.DAVClient(url=office.server.dav, username="alice", password="alice-password")
    agenda = dav.calendar(url=office.server.dav + "alice/rdv/")
    start = datetime.combine(day, datetime.min.time()).replace(hour=11)
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    text = event("Camille-Durand-rdv", start, summary="Camille Durand", extra=extra)
    saved = agenda.save_event(text)
    (created,) = setup.graph.wait(lambda: setup.ours(day))
    assert created["subject"] == "Consultation" and "Camille" not in str(created)
    saved.delete()
    setup.graph.wait(lambda: not setup.ours(day))


def test_a_new_email_moves_the_agents_events_to_its_new_mailbox(setup: Setup) -> None:
    day = _day(setup, 1, 3)
    agent = f"/organisations/{setup.office.org}/agents/{setup.office.alice}"
    _book(setup, day, "09:00")
    setup.graph.wait(lambda: setup.ours(day))
    other = "alice.martin@pmi.example.org"

    def in_other() -> list[dict]:
        return [e for e in setup.graph.events(other) if e["start"]["dateTime"].startswith(str(day))]

    with setup.office.client() as admin:
        ok(admin.patch(agent, json={"email": other}))
        try:
            setup.graph.wait(lambda: in_other() and not setup.ours(day))
        finally:
            ok(admin.patch(agent, json={"email": ALICE}))
    setup.graph.wait(lambda: setup.ours(day) and not in_other())


def test_a_dropped_response_is_retried_without_a_duplicate(setup: Setup) -> None:
    day = _day(setup, 0, 2)
    setup.graph.fail(Fault(0, method="POST"))
    _book(setup, day, "09:00")

    def posts() -> list[bytes]:
        return [r.body for r in setup.graph.requests("POST") if f'"{day}T'.encode() in r.body]

    setup.graph.wait(lambda: len(posts()) >= 2 and setup.ours(day))
    assert len(set(posts())) == 1  # the same transactionId, sent again
    time.sleep(0.3)
    assert len(setup.ours(day)) == 1 and len(posts()) == 2


def test_429_and_503_are_retried_after_retry_after(setup: Setup) -> None:
    day = _day(setup, 0, 3)
    setup.graph.fail(Fault(429, "1", method="POST"), Fault(503, method="POST"))
    _book(setup, day, "09:00")
    setup.graph.wait(lambda: setup.ours(day))
    statuses = [e for e in reversed(setup.log()) if e["operation"] == "create"][-3:]
    assert [e["status"] for e in statuses] == [429, 503, 201]
    waited = datetime.fromisoformat(statuses[1]["at"]) - datetime.fromisoformat(statuses[0]["at"])
    assert waited >= timedelta(seconds=1)  # Retry-After: 1 honoured


def test_a_token_expired_mid_run_is_renewed(setup: Setup) -> None:
    day = _day(setup, 0, 4)
    _book(setup, day, "09:00")
    setup.graph.wait(lambda: setup.ours(day))
    setup.graph.expire_tokens()
    _book(setup, day, "10:00")
    setup.graph.wait(lambda: len(setup.ours(day)) == 2)
    assert [e["status"] for e in setup.log()[:2]] == [201, 401]


def test_a_refused_secret_breaks_the_connection_until_it_is_set_again(setup: Setup) -> None:
    day = _day(setup, 1, 0)
    setup.graph.revoke_app(CLIENT)
    setup.graph.expire_tokens()
    try:
        _book(setup, day, "09:00")
        broken = setup.graph.wait(lambda: (c := setup.connection())["state"] == "broken" and c)
        assert "invalid_client" in broken["broken_reason"]
        calls = len(setup.graph.requests())
        time.sleep(0.5)  # no retry while broken
        assert len(setup.graph.requests()) == calls and not setup.ours(day)
    finally:
        setup.graph.register_app(TENANT, CLIENT, SECRET)
        setup.connect()
    setup.graph.wait(lambda: setup.ours(day))


def test_reconciliation_repairs_hand_edits(setup: Setup) -> None:
    day = _day(setup, 1, 1)
    _book(setup, day, "09:00")
    _book(setup, day, "10:00")
    first, second = setup.graph.wait(lambda: len(found := setup.ours(day)) == 2 and found)
    setup.graph.delete_by_hand(ALICE, first["id"])
    setup.graph.edit_by_hand(ALICE, second["id"], subject="changed by hand")
    stray = setup.graph.add_by_hand(
        ALICE,
        {
            "subject": "ours, but no RDV",
            "start": {"dateTime": f"{day}T16:00:00", "timeZone": "Europe/Paris"},
            "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": "gone@calserver"}],
        },
    )
    done = run_cli(setup.office.server.database_url, "m365-reconcile", config=setup.config)
    assert done.returncode == 0, done.stderr
    setup.graph.wait(lambda: len(setup.ours(day)) == 2)
    now = {e["start"]["dateTime"]: e for e in setup.ours(day)}
    assert now[f"{day}T10:00:00"]["id"] == second["id"]
    assert now[f"{day}T10:00:00"]["subject"] == "Consultation"
    assert now[f"{day}T09:00:00"]["id"] != first["id"]
    assert stray not in {e["id"] for e in setup.graph.events(ALICE)}


# Each value starts with a word no request would hold otherwise, so that a
# value found in a request is a leak, not a coincidence with a field name.
_words = st.text(alphabet=st.characters(categories=("L", "N", "Zs", "P")), min_size=1, max_size=40)
_emails = itertools.count()
_slots = iter(
    (weeks, weekday, f"{9 + n // 2:02d}:{30 * (n % 2):02d}")
    for weeks in range(2, 6)
    for weekday in range(5)
    for n in range(6)
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
@given(
    first=_words.map("Prénom".__add__),
    last=_words.map("Nomdefamille".__add__),
    email=st.emails().map("usager.".__add__),
    phone=st.from_regex(r"\+33[1-9]\d{8}", fullmatch=True),
    notes=_words.map("Remarque".__add__),
)
def test_no_usager_data_reaches_graph(
    setup: Setup, first: str, last: str, email: str, phone: str, notes: str
) -> None:
    """Whatever a usager is called, reached at or noted as, none of it is in
    any request Graph receives (the booked RDV's SUMMARY holds the name)."""
    office = setup.office
    # One email per example (they are unique in an organisation), replays included.
    email = f"n{next(_emails)}{email}"
    person = {"first_name": first, "last_name": last, "email": email, "phone": phone}
    with office.client() as admin:
        created = admin.post(
            f"/organisations/{office.org}/usagers", json={**person, "notes": notes}
        )
    assume(created.status_code == 201)
    weeks, weekday, hhmm = next(_slots)
    day = _day(setup, weeks, weekday)
    before = len(setup.ours(day))
    _book(setup, day, hhmm, usager=created.json()["id"])
    setup.graph.wait(lambda: len(setup.ours(day)) > before)
    sent = b"".join(r.body + str(r.query).encode() for r in setup.graph.requests())
    for value in (*person.values(), notes):
        assert value.encode() not in sent
        assert json.dumps(value)[1:-1].encode() not in sent


def _second_organisation(setup: Setup) -> tuple[int, int, int, int]:
    """A second organisation made by the operator, alice a member with
    afternoon plages there, connected to the same tenant: (organisation,
    motif, lieu, usager)."""
    office = setup.office
    with office.client() as operator:
        body = {"name": "CCAS Outlook", "slug": "ccas-outlook", "time_zone": "Europe/Paris"}
        org = ok(operator.post("/organisations", json=body), 201)["id"]
        path = f"/organisations/{org}"
        pmi = ok(operator.post(f"{path}/services", json={"name": "PMI"}), 201)["id"]
        add = {"login": "alice", "role": "basic", "service_ids": [pmi]}
        ok(operator.post(f"{path}/memberships", json=add), 201)
        lieu_body = {"name": "Centre social", "address": "2 rue Haute, 75011 Paris"}
        lieu = ok(operator.post(f"{path}/lieux", json=lieu_body), 201)["id"]
        motif_body = {"name": "Entretien", "service_id": pmi}
        motif = ok(operator.post(f"{path}/motifs", json=motif_body), 201)["id"]
        person = {"first_name": "Lou", "last_name": "Martin", "email": "lou@example.org"}
        usager = ok(operator.post(f"{path}/usagers", json=person), 201)["id"]
        plage = {"motif_ids": [motif], "lieu_id": lieu, "first_day": office.day.isoformat(),
                 "start_time": "14:00", "end_time": "17:00",
                 "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS}}  # fmt: skip
        ok(operator.post(f"/agents/{office.alice}/plages", json=plage), 201)
        secret = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
        ok(operator.put(f"{path}/m365/connection", json=secret))
    return org, motif, lieu, usager


def test_reconciliation_leaves_another_organisations_events(setup: Setup) -> None:
    """Alice works in two organisations, both pushing to her one mailbox: the
    reconciliation of each leaves the other's events alone (no ping-pong of
    deletions and recreations), and still deletes a true stray."""
    day = _day(setup, 1, 2)
    _, motif, lieu, usager = _second_organisation(setup)
    _book(setup, day, "09:00")
    with setup.office.client("alice") as alice:
        booking = {"agent_id": setup.office.alice, "motif_id": motif, "lieu_id": lieu,
                   "starts_at": f"{day}T14:00", "usager_ids": [usager]}  # fmt: skip
        ok(alice.post("/rdvs", json=booking), 201)
    pushed = setup.graph.wait(lambda: len(found := setup.ours(day)) == 2 and found)
    stray = setup.graph.add_by_hand(
        ALICE,
        {
            "subject": "ours, but no RDV",
            "start": {"dateTime": f"{day}T16:00:00", "timeZone": "Europe/Paris"},
            "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": "gone2@calserver"}],
        },
    )
    for _ in range(2):  # a ping-pong would show on the first or the second round
        done = run_cli(setup.office.server.database_url, "m365-reconcile", config=setup.config)
        assert done.returncode == 0, done.stderr
        assert sorted(e["id"] for e in setup.ours(day)) == sorted(e["id"] for e in pushed)
    assert stray not in {e["id"] for e in setup.graph.events(ALICE)}
    assert not [r for r in setup.graph.requests("DELETE") if any(e["id"] in r.path for e in pushed)]
