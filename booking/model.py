"""The scheduling domain as plain data: what the créneaux engine and the booking
rules read.  Instants are timezone-aware datetimes; the engine works in UTC and
converts to the organisation's zone only where local time matters (holidays,
rounding is zone-independent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

LOCATION_TYPES = ("public_office", "phone", "home", "visio")
BOOKABLE_BY = ("agents", "agents_and_prescripteurs", "everyone")
# excused (cancelled by the usager) and revoked (by the service) free the slot.
RDV_STATUSES = ("unknown", "seen", "noshow", "excused", "revoked")
CANCELLED_STATUSES = frozenset({"excused", "revoked"})


@dataclass(frozen=True)
class Organisation:
    id: int
    time_zone: str = "Europe/Paris"
    holiday_zone: str = "metropole"
    pentecost_worked: bool = False
    overbooking_allowed: bool = False


@dataclass(frozen=True)
class Motif:
    id: int
    service_id: int
    name: str
    duration_minutes: int = 30
    location_type: str = "public_office"
    bookable_by: str = "agents"
    min_delay_minutes: int = 30
    max_delay_minutes: int = 90 * 24 * 60


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


class PlageOccurrence(NamedTuple):
    """One occurrence of a plage d'ouverture, [start, end) in POSIX seconds
    (the engine walks thousands: tuples of ints, not datetimes).

    ``order`` is the plage's registration order (first registered wins a
    slot several agents could take); ``motif_ids`` None means "every motif of
    the agent's services that fits the lieu" (a plage written by a plain
    calendar client)."""

    agent_id: int
    order: int
    start: int
    end: int
    lieu_id: int | None = None
    motif_ids: frozenset[int] | None = None
    agent_service_ids: frozenset[int] = frozenset()

    def offers(self, motif: Motif, lieu_id: int | None = None, public: bool = False) -> bool:
        """Whether this occurrence offers the motif (at the lieu); ``public``:
        to usagers and prescripteurs, who only ever get the motifs a plage
        names (a plage without motifs is for agents' bookings only)."""
        wrong_lieu = self.lieu_id is None or lieu_id not in (None, self.lieu_id)
        if motif.location_type == "public_office" and wrong_lieu:
            return False
        if self.motif_ids is not None:
            return motif.id in self.motif_ids
        return not public and motif.service_id in self.agent_service_ids


class Busy(NamedTuple):
    """Time an agent cannot be booked, [start, end) in POSIX seconds: an
    absence, an RDV, a blocking event (``reason``, for refusal messages)."""

    agent_id: int
    start: int
    end: int
    reason: str = "busy"
    uid: str = ""


def ts(moment: datetime) -> int:
    """POSIX seconds of an aware datetime."""
    return int(moment.timestamp())


@dataclass(frozen=True)
class Creneau:
    start: datetime
    end: datetime
    agent_id: int
    lieu_id: int | None
    # Every agent free for this slot at this lieu, first-registered plage first.
    agent_ids: tuple[int, ...] = ()


def holds_time(status: str) -> bool:
    """Whether an RDV of this status keeps its slot (a noshow does; a cancelled one not)."""
    return status not in CANCELLED_STATUSES
