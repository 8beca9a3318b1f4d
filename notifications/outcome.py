"""What one send attempt came to, whatever the channel: sent, worth trying
again later (a temporary failure), or never (a permanent one)."""

from __future__ import annotations

from dataclasses import dataclass

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass(frozen=True)
class Outcome:
    status: str  # sent / retry / failed
    provider_id: str | None = None
    error: str | None = None

    @property
    def sent(self) -> bool:
        return self.status == SENT


def sent(provider_id: str | None = None) -> Outcome:
    return Outcome(SENT, provider_id)


def retry(error: str) -> Outcome:
    return Outcome(RETRY, None, error[:200])


def failed(error: str) -> Outcome:
    return Outcome(FAILED, None, error[:200])
