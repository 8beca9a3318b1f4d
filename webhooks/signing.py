"""Endpoint secrets and the signatures of webhook requests.

A secret is Standard Webhooks' ``whsec_`` + base64 of 32 random bytes, shown
to the admin once.
"""

from __future__ import annotations

import base64
import secrets


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
