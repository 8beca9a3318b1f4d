"""Webhooks over a real server whose worker polls only every 30 seconds:
new work is delivered at once (the wake-up, not the poll); a disabled
endpoint keeps what it is sent and gets it, in order, once enabled; the
admin's redelivery of every failed delivery and of one delivery.

One server per database for the module; each test books its own slots, has
its own receiver and deletes its endpoint, so that the next one hears
nothing of it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import start_server
from tests.protocol.pmi_office import Office, book, ok, set_up, subscribe
from tests.webhooks.receiver import Answer, Receiver

CONFIG = (
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\n"
    "retry_first_ms = 200\ntimeout_seconds = 2\npoll_seconds = 30\n"
)
AT_ONCE_S = 10.0  # a third of the poll interval: room for a loaded CI machine


@pytest.fixture(scope="module")
def office(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    server = start_server(
        module_database_url, tmp_path_factory.mktemp("server"), extra_config=CONFIG
    )
    yield set_up(server)
    server.stop()


@pytest.fixture
def base(office: Office) -> Iterator[str]:
    """The organisation's endpoints URL; the endpoints a test made are deleted after it."""
    url = f"/organisations/{office.org}/webhook_endpoints"
    yield url
    with office.client() as admin:
        for endpoint in ok(admin.get(url)):
            assert admin.delete(f"{url}/{endpoint['id']}").status_code == 204


def _log(office: Office, url: str) -> list[dict]:
    with office.client() as admin:
        return ok(admin.get(url + "/deliveries"))


def _until(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def test_a_booking_is_delivered_at_once_not_at_the_next_poll(
    office: Office, receiver: Receiver, base: str
) -> None:
    subscribe(office, receiver, "/wake", ["rdv"], initial_sync=False)
    time.sleep(0.3)  # the worker has gone back to sleep, for up to 30 s
    booked_at = time.time()
    rdv = ok(book(office, "09:00"), 201)
    (sent,) = receiver.wait_for("/wake", 1, timeout=AT_ONCE_S)
    assert sent.json["data"]["uuid"] == rdv["id"] and sent.at - booked_at < AT_ONCE_S


def test_a_disabled_endpoint_gets_what_waited_in_order_and_failed_ones_on_demand(
    office: Office, receiver: Receiver, base: str
) -> None:
    receiver.answer("/paused", Answer(410))
    endpoint = subscribe(office, receiver, "/paused", ["rdv"], initial_sync=False)
    url = f"{base}/{endpoint['id']}"
    first = ok(book(office, "09:30"), 201)
    receiver.wait_for("/paused", 1, timeout=AT_ONCE_S)
    with office.client() as admin:
        _until(lambda: not ok(admin.get(url))["enabled"])
    # Written while the endpoint is disabled: kept for it, not sent, not leased
    # (nor does the worker wake for them over and over).
    later = [ok(book(office, at), 201)["id"] for at in ("10:00", "10:30")]
    time.sleep(1)
    assert len(receiver.on("/paused")) == 1
    log = _log(office, url)
    assert [(d["state"], d["attempts"]) for d in log] == [
        ("pending", 0), ("pending", 0), ("failed", 1),
    ]  # fmt: skip
    with office.client() as admin:  # enabling it wakes the worker
        ok(admin.patch(url, json={"enabled": True}))
    resumed = receiver.wait_for("/paused", 3, timeout=AT_ONCE_S)[1:]
    assert [r.json["data"]["uuid"] for r in resumed] == later  # in the order written
    # The one the 410 gave up: due again on the admin's word, delivered now.
    with office.client() as admin:
        assert ok(admin.post(url + "/redeliver_failed"), 202) == {"redelivered": 1}
        assert ok(admin.post(url + "/redeliver_failed"), 202) == {"redelivered": 0}
    again = receiver.wait_for("/paused", 4, timeout=AT_ONCE_S)[-1]
    assert again.json["data"]["uuid"] == first["id"]
    assert again.headers["webhook-id"] == receiver.on("/paused")[0].headers["webhook-id"]

    def all_delivered() -> list[dict] | None:
        found = _log(office, url)
        return found if all(d["state"] == "delivered" for d in found) else None

    log = _until(all_delivered)
    assert [d["attempts"] for d in log] == [1, 1, 2]
    # Redeliver one: the same event again, with the same webhook-id.
    with office.client() as admin:
        one = admin.post(f"{url}/deliveries/{log[0]['id']}/redeliver")
        assert ok(one, 202) == {"redelivered": 1}
        assert admin.post(f"{url}/deliveries/999999/redeliver").status_code == 404
    resent = receiver.wait_for("/paused", 5, timeout=AT_ONCE_S)[-1]
    assert resent.headers["webhook-id"] == f"msg_{log[0]['event_id']}"
    assert resent.json["data"]["uuid"] == later[-1]
    assert all(r.verified for r in receiver.on("/paused"))
