"""Endpoint secrets and the signatures of webhook requests.

A secret is Standard Webhooks' ``whsec_`` + base64 of 32 random bytes, shown
to the admin once.  Every request carries two signatures of its raw body:

- ``X-Lapin-Signature``, as RDV-SP sends it: the lowercase hex HMAC-SHA256 of
  the body keyed with the secret's text, for consumers written for RDV-SP.  It
  holds one value (such a consumer compares one HMAC): during a rotation's
  overlap it is made with the *previous* secret, and with the new one from
  the moment the overlap ends, so a legacy consumer switches secrets at a
  time it knows (``previous_secret_valid_until``) and never misses a request.
- The Standard Webhooks headers, made by the ``standardwebhooks`` library:
  ``webhook-id`` (stable for an event, across retries), ``webhook-timestamp``
  (the attempt's time: a receiver refuses a request replayed outside its
  tolerance) and ``webhook-signature``, one ``v1,`` signature per secret in
  force, so that during a rotation's overlap a receiver holding either secret
  verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def lapin_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def message_id(event_id: int) -> str:
    """The ``webhook-id`` of an event: the same on every attempt to deliver it."""
    return f"msg_{event_id}"


def signed_headers(
    secrets_in_force: Sequence[str], event_id: int, body: bytes, at: datetime | None = None
) -> dict[str, str]:
    """The signature headers of one attempt, given the secrets in force
    newest first: Standard Webhooks' ``webhook-signature`` carries one ``v1,``
    entry per secret, ``X-Lapin-Signature`` the oldest one's HMAC."""
    if not secrets_in_force:
        raise ValueError("an endpoint signs with at least one secret")
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    msg_id = message_id(event_id)
    text = body.decode("utf-8")
    signatures = [Webhook(s).sign(msg_id, moment, text) for s in secrets_in_force]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
        "X-Lapin-Signature": lapin_signature(secrets_in_force[-1], body),
    }


def secrets_in_force(endpoint: dict, now: datetime | None = None) -> list[str]:
    """The endpoint's secret, and its previous one while its overlap lasts."""
    found = [endpoint["secret"]]
    until = endpoint.get("previous_secret_until")
    moment = (now or datetime.now(UTC)).timestamp()
    if endpoint.get("previous_secret") and until is not None and until > moment:
        found.append(endpoint["previous_secret"])
    return found
