"""The API's request types agree with what the domain accepts."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from calserver.api import schemas
from storage import outbox


def test_webhook_subscriptions_are_the_outbox_models() -> None:
    assert get_args(schemas.Model) == outbox.MODELS


@pytest.mark.parametrize(
    "value", ["x,y@example.org", "a@b", "a b@c.fr", "<a@b.fr>", '"a"@b.fr', "a;b@c.fr"]
)
def test_an_email_is_one_address(value: str) -> None:
    """The SMTP To header read "x,y@example.org" as two recipients."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"first_name": "A", "last_name": "B", "email": value}, schemas.UsagerIn)


def test_ordinary_emails_pass() -> None:
    for value in ("lea@example.org", "l.x+pmi@mairie.example.fr", "o'neil@a-b.fr"):
        body = {"first_name": "A", "last_name": "B", "email": value}
        assert msgspec.convert(body, schemas.UsagerIn).email == value
