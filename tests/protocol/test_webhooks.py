"""Webhooks end to end: a real server delivers to a real receiver on
loopback that verifies every request with ``standardwebhooks`` and an
independent HMAC of ``X-Lapin-Signature``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import caldav
import pytest
import standardwebhooks.webhooks
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import start_server
from tests.ics import event
from tests.protocol.pmi_office import Office, book, ok, set_up, subscribe
from tests.webhooks.receiver import Answer, Receiver

WEBHOOK_CONFIG = (
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\n"
    "retry_first_ms = 200\ntimeout_seconds = 2\npoll_seconds = 1\n"
)


@pytest.fixture
def office(database_url: str, tmp_path: Path) -> Iterator[Office]:
    server = start_server(database_url, tmp_path / "server", extra_config=WEBHOOK_CONFIG)
    yield set_up(server)
    server.stop()


def _rdv_text(office: Office, uid: str, hour: int) -> str:
    start = datetime.combine(office.day, datetime.min.time()).replace(hour=hour)
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    return event(uid, start, extra=extra)


def test_rdvs_from_the_api_and_caldav_arrive_once_signed(
    office: Office, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(office, receiver, "/rdv", ["rdv"])
    subscribe(office, receiver, "/motif", ["motif"])
    receiver.wait_for("/motif", 1)  # the initial sync of the motif
    rdv = ok(book(office, "09:00"), 201)
    (booked,) = receiver.wait_for("/rdv", 1)
    sent = booked.json
    assert sent["meta"]["model"] == "Rdv" and sent["meta"]["event"] == "created"
    assert sent["meta"]["webhook_reason"] is None and sent["meta"]["sequence"] == 1
    assert sent["data"]["uuid"] == rdv["id"] and sent["data"]["status"] == "unknown"
    assert sent["data"]["starts_at"].startswith(office.at("09:00"))
    assert sent["data"]["users"][0]["last_name"] == "Durand"
    assert sent["data"]["agents"][0]["login"] == "alice"
    assert sent["data"]["lieu"]["address"].startswith("1 place de la Mairie")
    dav = caldav.DAVClient(url=office.server.dav, username="alice", password="alice-password")
    dav.calendar(url=office.server.dav + "alice/rdv/").save_event(_rdv_text(office, "dav-1", 11))
    with office.client("alice") as alice:
        url = f"/agents/{office.alice}/rdvs/{rdv['id']}"
        ok(alice.patch(url, json={"starts_at": office.at("10:00")}))
        receiver.wait_for("/rdv", 3)
        ok(alice.delete(url))
    receiver.wait_for("/rdv", 4)
    dav.calendar(url=office.server.dav + "alice/rdv/").event_by_uid("dav-1").delete()
    by_bob = ok(book(office, "10:30", login="bob"), 201)  # bob shares alice's service
    assert book(office, "10:30").status_code == 409  # refused: tells nothing
    with office.client() as admin:
        ok(admin.patch(f"/organisations/{office.org}/motifs/{office.motif}", json={"name": "PMI"}))
    receiver.wait_for("/motif", 2)
    arrived = receiver.wait_for("/rdv", 6)
    told = [
        (r.json["meta"]["event"], r.json["data"]["uuid"], r.json["meta"]["changes"])
        for r in arrived
    ]
    assert sorted(told) == sorted([
        ("created", rdv["id"], ["created"]),
        ("created", "dav-1", ["created"]),
        ("updated", rdv["id"], ["moved"]),
        ("updated", rdv["id"], ["status_changed", "cancelled"]),
        ("destroyed", "dav-1", ["destroyed"]),
        ("created", by_bob["id"], ["created"]),
    ])  # fmt: skip
    assert all(r.verified for r in receiver.received)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids))  # each event once
    motif = receiver.on("/motif")[-1].json
    assert (motif["meta"]["model"], motif["data"]["name"]) == ("Motif", "PMI")
    # A request captured and replayed ten minutes later fails verification.
    captured = arrived[0]
    later = datetime.now(standardwebhooks.webhooks.timezone.utc) + timedelta(minutes=10)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return later

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", Later)
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secrets[0]).verify(captured.body, captured.headers)


def _log(office: Office, endpoint: dict) -> list[dict]:
    with office.client() as admin:
        base = f"/organisations/{office.org}/webhook_endpoints/{endpoint['id']}"
        return ok(admin.get(base + "/deliveries"))


def _log_once(office: Office, endpoint: dict, state: str) -> dict:
    """The endpoint's one delivery once it is in ``state``: the receiver sees a
    request before the worker records its answer."""
    deadline = datetime.now() + timedelta(seconds=10)
    while (found := _log(office, endpoint))[0]["state"] != state and datetime.now() < deadline:
        time.sleep(0.05)
    (delivery,) = found
    return delivery


def test_failures_are_retried_logged_and_410_disables(office: Office, receiver: Receiver) -> None:
    receiver.answer("/flaky", Answer(500), Answer(503, {"Retry-After": "2"}))
    receiver.answer("/gone", Answer(410))
    receiver.answer("/moved", Answer(302, {"Location": receiver.url("/elsewhere")}))
    flaky = subscribe(office, receiver, "/flaky", ["rdv"])
    gone = subscribe(office, receiver, "/gone", ["rdv"])
    moved = subscribe(office, receiver, "/moved", ["rdv"])
    ok(book(office, "09:00"), 201)
    first, second, third = receiver.wait_for("/flaky", 3)
    assert third.at - second.at >= 1.9  # Retry-After: 2 over a 200 ms backoff
    assert len({r.headers["webhook-id"] for r in (first, second, third)}) == 1
    log = _log_once(office, flaky, "delivered")
    assert log["state"] == "delivered" and log["attempts"] == 3
    assert [a["status_code"] for a in log["attempts_log"]] == [500, 503, 200]
    assert log["attempts_log"][0]["response_excerpt"] == "merci"
    receiver.wait_for("/gone", 1)
    with office.client() as admin:
        base = f"/organisations/{office.org}/webhook_endpoints"
        deadline = datetime.now() + timedelta(seconds=10)
        while ok(admin.get(f"{base}/{gone['id']}"))["enabled"] and datetime.now() < deadline:
            time.sleep(0.1)
        disabled = ok(admin.get(f"{base}/{gone['id']}"))
    assert disabled["enabled"] is False and "410" in disabled["disabled_reason"]
    receiver.wait_for("/moved", 1)
    assert receiver.on("/elsewhere") == []  # redirects are not followed: failed for good
    redirected = _log_once(office, moved, "failed")
    assert redirected["state"] == "failed" and redirected["attempts"] == 1
    assert "redirect not followed" in redirected["attempts_log"][0]["error"]
    assert "failed for good" in office.server.log()
    ok(book(office, "09:30"), 201)
    receiver.wait_for("/flaky", 4)
    assert len(receiver.on("/gone")) == 1  # a disabled endpoint gets nothing more
    assert all(r.verified for r in receiver.received)


def test_a_receiver_down_then_up_gets_everything_and_redelivery(
    office: Office, receiver: Receiver
) -> None:
    endpoint = subscribe(office, receiver, "/hook", ["rdv"])
    receiver.stop()
    for at in ("09:00", "09:30", "10:00"):
        ok(book(office, at), 201)
    deadline = datetime.now() + timedelta(seconds=20)
    while datetime.now() < deadline:  # wait until every delivery failed at least once
        logs = _log(office, endpoint)
        if len(logs) == 3 and all(log["attempts"] >= 2 for log in logs):
            break
        time.sleep(0.1)
    assert all("connection failed" in a["error"] for log in logs for a in log["attempts_log"])
    receiver.start()
    arrived = receiver.wait_for("/hook", 3, timeout=30)
    assert len({r.headers["webhook-id"] for r in arrived}) == 3
    delivery = _log(office, endpoint)[0]
    with office.client() as admin:
        base = f"/organisations/{office.org}/webhook_endpoints/{endpoint['id']}"
        again = admin.post(f"{base}/deliveries/{delivery['id']}/redeliver")
        assert ok(again, 202) == {"redelivered": 1}
        assert admin.post(f"{base}/deliveries/999999/redeliver").status_code == 404
    resent = receiver.wait_for("/hook", 4)[-1]
    assert resent.headers["webhook-id"] == f"msg_{delivery['event_id']}"
    assert all(r.verified for r in receiver.received)
