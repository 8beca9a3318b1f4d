"""Phone numbers as SMS providers want them: E.164, and mobile only.

Usagers type numbers as they like ("06 12 34 56 78", "+33612345678",
"0033 6..."); ``phonenumbers`` reads them in the region of the organisation
(a number written nationally, "0692...", is a Réunion mobile only when read
as Réunion's: ``region_of_zone``) and tells a mobile from a landline, which
cannot receive an SMS.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

DEFAULT_REGION = "FR"
# Holiday zones of overseas departments -> their numbering region.
_REGIONS = {"971": "GP", "972": "MQ", "973": "GF", "974": "RE", "976": "YT"}
_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def region_of_zone(holiday_zone: str) -> str:
    """The numbering region national numbers are read in, from the
    organisation's holiday zone (metropole, Alsace and Moselle: France)."""
    return _REGIONS.get(holiday_zone, DEFAULT_REGION)


def e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (``+33612345678``), or None when it is not a valid number."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mobile_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 when it can receive an SMS (a mobile), else None."""
    normalised = e164(raw, region)
    if normalised is None:
        return None
    if phonenumbers.number_type(phonenumbers.parse(normalised)) not in _MOBILE:
        return None
    return normalised


def masked(number: str) -> str:
    """What a receipt shows of a number: its country code and last two digits."""
    if len(number) <= 5:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]
