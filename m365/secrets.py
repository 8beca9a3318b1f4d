"""Secrets stored encrypted: an organisation's client secret or private key
and agents' refresh tokens are kept as Fernet tokens whose key is in the
configuration (``[m365] key`` or ``CALSERVER_M365_KEY``), never in the
database, so a leaked dump alone does not open the tenant or a mailbox.  The
same key seals the "Connecter Outlook" flow in the browser's cookie and
signs its forms (``tag``).

cryptography is imported when a box is made: a server without ``[m365]
key`` never loads it (a CalDAV-only process stays small)."""

from __future__ import annotations

import hashlib
import hmac


class SecretError(ValueError):
    """The key is unusable, or a stored secret was not encrypted with it."""


class SecretBox:
    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as e:
            raise SecretError(f"not a Fernet key ({e})") from None
        self._mac_key = hashlib.sha256(b"calserver-forms\0" + key.encode()).digest()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str, ttl_s: int | None = None) -> str:
        """The secret; ``ttl_s``: refused when sealed longer ago than that."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode(), ttl=ttl_s).decode()
        except InvalidToken:
            raise SecretError("stored with another key, altered or expired") from None

    def tag(self, text: str) -> str:
        """An HMAC of ``text`` under a key derived from this one (a form's
        CSRF token bound to a login)."""
        return hmac.new(self._mac_key, text.encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    """A key for ``[m365] key`` (what ``calserver m365-key`` prints)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
