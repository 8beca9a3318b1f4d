"""Secrets stored encrypted: an organisation's client secret (and later
agents' refresh tokens) is kept as a Fernet token whose key is in the
configuration (``[m365] key`` or ``CALSERVER_M365_KEY``), never in the
database, so a leaked dump alone does not open the tenant.  cryptography is
imported when a box is made: a server without the key never loads it."""

from __future__ import annotations


class SecretError(ValueError):
    """The key is unusable, or a stored secret was not encrypted with it."""


class SecretBox:
    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as e:
            raise SecretError(f"not a Fernet key ({e})") from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretError("stored with another key") from None


def new_key() -> str:
    """A key for ``[m365] key`` (what ``calserver m365-key`` prints)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
