"""Webhook endpoints through the API: admins only, the secret shown once,
rotation with overlap, subscriptions, initial sync replayed to the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import outbox
from storage.database import Database
from tests.conftest import Server, start_server
from tests.protocol.pmi_office import Office, ok, set_up

WEBHOOK_CONFIG = "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\n"


@pytest.fixture
def office(database_url: str, tmp_path: Path) -> Iterator[Office]:
    server = start_server(database_url, tmp_path / "server", extra_config=WEBHOOK_CONFIG)
    yield set_up(server)
    server.stop()


def _replayed(server: Server, endpoint_id: int) -> list[outbox.Event]:
    db = Database(server.database_url)
    try:
        with db.transaction(write=False) as conn:
            return [e for e in outbox.events(conn) if e.endpoint_id == endpoint_id]
    finally:
        db.dispose()


def test_admins_manage_endpoints_and_see_the_secret_once(office: Office) -> None:
    base = f"/organisations/{office.org}/webhook_endpoints"
    with office.client() as admin:
        created = ok(
            admin.post(
                base,
                json={"target_url": "http://127.0.0.1:9/hook", "subscriptions": ["rdv", "motif"]},
            ),
            201,
        )
        secret = created["secret"]
        assert secret.startswith("whsec_") and len(secret) > 40
        assert created["subscriptions"] == ["motif", "rdv"] and created["enabled"] is True
        # Initial sync: the motif (no RDV yet), as a created event for this endpoint only.
        assert created["initial_sync_events"] == 1
        (replayed,) = _replayed(office.server, created["id"])
        assert (replayed.model, replayed.record_id, replayed.reason) == (
            "motif", office.motif, "initial_sync",
        )  # fmt: skip
        url = f"{base}/{created['id']}"
        shown = ok(admin.get(url))
        listed = ok(admin.get(base))
        assert secret not in str(shown) and secret not in str(listed)
        assert "secret" not in shown and [e["id"] for e in listed] == [created["id"]]
        changed = ok(admin.patch(url, json={"subscriptions": ["usager"], "enabled": False}))
        assert changed["subscriptions"] == ["usager"] and changed["enabled"] is False
        assert ok(admin.post(url + "/sync"), 202) == {"initial_sync_events": 1}
        assert {e.model for e in _replayed(office.server, created["id"])} == {"motif", "usager"}
        rotated = ok(admin.post(url + "/rotate", json={"overlap_hours": 2}))
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
        assert rotated["previous_secret_valid_until"] is not None
        no_overlap = ok(admin.post(url + "/rotate"))  # default overlap: 24 hours
        assert no_overlap["previous_secret_valid_until"] > rotated["previous_secret_valid_until"]
        assert admin.delete(url).status_code == 204
        assert admin.get(url).status_code == 404
    log = office.server.log()  # the server's, its in-process delivery worker's too
    for shown_once in (secret, rotated["secret"], no_overlap["secret"]):
        assert shown_once not in log


def test_endpoint_input_is_checked(office: Office) -> None:
    base = f"/organisations/{office.org}/webhook_endpoints"
    with office.client() as admin:
        for target, code in (
            ("http://10.0.0.1/hook", "invalid-target"),  # private, not allowlisted
            ("ftp://example.org/hook", "invalid-target"),
            ("http://user:pw@127.0.0.1/hook", "invalid-target"),
        ):
            refused = admin.post(base, json={"target_url": target})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == code
        unknown = admin.post(
            base, json={"target_url": "http://127.0.0.1/h", "subscriptions": ["x"]}
        )
        assert unknown.status_code == 422
        first = ok(admin.post(base, json={"target_url": "http://127.0.0.1/h"}), 201)
        assert first["subscriptions"] == ["absence", "plage_ouverture", "rdv"]  # RDV-SP's default
        again = admin.post(base, json={"target_url": "http://127.0.0.1/h"})
        assert again.status_code == 409
        assert len(ok(admin.get(base))) == 1
    with office.client("alice") as alice:
        assert alice.get(base).status_code == 403
        assert alice.post(base, json={"target_url": "http://127.0.0.1/x"}).status_code == 403
        # Rights are checked before the target: a refused one is still a 403.
        assert alice.post(base, json={"target_url": "http://10.0.0.1/x"}).status_code == 403
        endpoint = f"{base}/{first['id']}"
        assert alice.patch(endpoint, json={"target_url": "ftp://x/"}).status_code == 403
