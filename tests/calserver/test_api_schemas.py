"""The API's request types agree with what the domain accepts."""

from __future__ import annotations

from typing import get_args

from calserver.api import schemas
from storage import outbox


def test_webhook_subscriptions_are_the_outbox_models() -> None:
    assert get_args(schemas.Model) == outbox.MODELS
