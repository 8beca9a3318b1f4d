"""Signatures of webhook requests, checked as receivers check them: with the
``standardwebhooks`` library and with an independent HMAC of the body."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import new_secret, secrets_in_force, signed_headers

BODY = '{"data":{"id":1,"nom":"Hélène"},"meta":{"model":"Rdv","event":"created"}}'.encode()


def test_both_signatures_verify() -> None:
    secret = new_secret()
    headers = signed_headers([secret], 42, BODY)
    assert Webhook(secret).verify(BODY, headers)["data"]["nom"] == "Hélène"
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["X-Lapin-Signature"] == expected
    assert headers["webhook-id"] == "msg_42" == signed_headers([secret], 42, b"{}")["webhook-id"]


def test_a_tampered_body_or_a_stale_replay_fails() -> None:
    secret = new_secret()
    headers = signed_headers([secret], 1, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"1", b"2"), headers)
    captured = signed_headers([secret], 1, BODY, at=datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, captured)  # outside the 5-minute tolerance
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_during_an_overlap_both_secrets_sign() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    endpoint = {
        "secret": new,
        "previous_secret": old,
        "previous_secret_until": int((now + timedelta(hours=1)).timestamp()),
    }
    in_force = secrets_in_force(endpoint, now)
    assert in_force == [new, old]
    headers = signed_headers(in_force, 7, BODY)
    assert Webhook(old).verify(BODY, headers) and Webhook(new).verify(BODY, headers)
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    # One X-Lapin-Signature: the previous secret's until the overlap ends.
    assert headers["X-Lapin-Signature"] == hmac.new(old.encode(), BODY, "sha256").hexdigest()
    after = secrets_in_force(endpoint, now + timedelta(hours=2))
    assert after == [new]
    headers_after = signed_headers(after, 7, BODY)
    assert headers_after["X-Lapin-Signature"] == hmac.new(new.encode(), BODY, "sha256").hexdigest()
    assert len(headers_after["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, headers_after)
