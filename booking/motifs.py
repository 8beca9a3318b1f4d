"""What makes a motif valid (domain.md): the bounds of its booking delays and
duration, its location type and who may book it."""

from __future__ import annotations

import re

from booking.model import BOOKABLE_BY, LOCATION_TYPES
from booking.rules import BookingRefused

MIN_DELAY_FLOOR = 30  # minutes
MAX_DELAY_CEILING = 366 * 24 * 60  # one year, in minutes
MAX_DURATION = 12 * 60
COLOUR = r"^#[0-9a-fA-F]{6}$"
_COLOUR = re.compile(COLOUR)


def check_motif(fields: dict) -> None:
    """Raise BookingRefused("invalid-motif") with the first problem found."""

    def refuse(message: str) -> None:
        raise BookingRefused("invalid-motif", message)

    if not str(fields.get("name", "")).strip():
        refuse("a motif needs a name")
    duration = fields["duration_minutes"]
    if not 5 <= duration <= MAX_DURATION or duration % 5:
        refuse(f"the duration is a multiple of 5 minutes, from 5 to {MAX_DURATION}")
    if fields["location_type"] not in LOCATION_TYPES:
        refuse(f"the location type is one of {', '.join(LOCATION_TYPES)}")
    if fields["bookable_by"] not in BOOKABLE_BY:
        refuse(f"bookable by is one of {', '.join(BOOKABLE_BY)}")
    low, high = fields["min_delay_minutes"], fields["max_delay_minutes"]
    for value in (low, high):
        if not MIN_DELAY_FLOOR <= value <= MAX_DELAY_CEILING:
            refuse("booking delays lie between 30 minutes and one year")
    if high <= low:
        refuse("the maximum booking delay must be longer than the minimum")
    if not _COLOUR.match(str(fields.get("color", "#000000"))):
        refuse("the colour is written #rrggbb")
