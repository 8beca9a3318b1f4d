"""Request bodies of the API, decoded and checked by msgspec (types, ranges,
unknown fields refused); the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from booking import motifs, public_holidays

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=5000)]
# One addr-spec, dot-atom on both sides: no comma, quote, angle bracket or
# space (the SMTP To header would read "x,y@example.org" as two addresses).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+"
Email = Annotated[
    str,
    Meta(
        max_length=320,
        pattern=rf"^(?![\s\S]*\s){_ADDRESS}$",
        description="one address, as local@domain.tld",
    ),
]
# Surrounding spaces are allowed and dropped (storage.scheduling.normalised_email).
UsagerEmail = Annotated[
    str,
    Meta(
        max_length=320,
        pattern=rf"^\s*{_ADDRESS}\s*$",
        description="one address, unique within the organisation, compared trimmed and "
        "case-insensitively",
    ),
]
Phone = Annotated[str, Meta(max_length=40)]
Address = Annotated[str, Meta(max_length=400)]
Postcode = Annotated[str, Meta(pattern=r"^\d{5}$", description="French postcode, 5 digits")]
City = Annotated[str, Meta(min_length=1, max_length=200)]
# The motif's rules live in booking.motifs (422 invalid-motif); the schema
# says them, from the same constants, without enforcing them a second time.
Duration = Annotated[
    int,
    Meta(
        description="minutes: a multiple of 5",
        extra_json_schema={"minimum": 5, "maximum": motifs.MAX_DURATION, "multipleOf": 5},
    ),
]
Delay = Annotated[
    int,
    Meta(
        description="minutes between booking and the RDV, for usagers; the maximum is "
        "longer than the minimum",
        extra_json_schema={"minimum": motifs.MIN_DELAY_FLOOR, "maximum": motifs.MAX_DELAY_CEILING},
    ),
]
Colour = Annotated[str, Meta(description="#rrggbb", extra_json_schema={"pattern": motifs.COLOUR})]
TimeZone = Annotated[
    str, Meta(max_length=64, description="an IANA time zone, e.g. Europe/Paris, America/Cayenne")
]
HolidayZone = Annotated[
    str,
    Meta(
        max_length=16,
        description="whose public holidays apply",
        extra_json_schema={"enum": list(public_holidays.zones())},
    ),
]
Id = Annotated[int, Meta(ge=1, le=2**31 - 1)]
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
LocalDate = Annotated[
    str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})
]
LocalTime = Annotated[
    str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local time")
]
Moment = Annotated[
    str,
    Meta(
        min_length=10,
        max_length=40,
        description="ISO 8601; local time of the organisation when no offset is given",
    ),
]
Status = Literal["unknown", "seen", "noshow", "excused", "revoked"]


class _In(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


Slug = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$",
        description="the public booking page's address: /prendre-rdv/<slug> (lower-case "
        "letters, digits and hyphens)",
    ),
]


class OrganisationPatch(_In):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    time_zone: TimeZone | UnsetType = UNSET
    holiday_zone: HolidayZone | UnsetType = UNSET
    pentecost_worked: bool | UnsetType = UNSET
    overbooking_allowed: bool | UnsetType = UNSET
    contact_email: Email | None | UnsetType = UNSET
    contact_phone: Phone | None | UnsetType = UNSET
    contact_address: Address | None | UnsetType = UNSET


class ServiceIn(_In):
    name: Name


class AgentIn(_In):
    login: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    role: Literal["admin", "basic", "intervenant"] = "basic"
    services: list[Name] = []
    display_name: Annotated[str, Meta(max_length=200)] = ""
    email: Email | None = None
    password: Annotated[str, Meta(min_length=8, max_length=200)] | None = None


class AgentPatch(_In):
    display_name: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    email: Email | None | UnsetType = UNSET
    other_calendars_block: bool | UnsetType = UNSET


class LieuIn(_In):
    name: Name
    address: Address
    phone: Phone | None = None
    enabled: bool = True


class LieuPatch(_In):
    name: Name | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class MotifIn(_In):
    name: Name
    service_id: Id
    color: Colour = "#1f6feb"
    duration_minutes: Duration = 30
    location_type: Literal["public_office", "phone", "home", "visio"] = "public_office"
    bookable_by: Literal["agents", "agents_and_prescripteurs", "everyone"] = "agents"
    min_delay_minutes: Delay = 30
    max_delay_minutes: Delay = 90 * 24 * 60
    instructions_before: Text = ""
    instructions_after: Text = ""
    usager_can_cancel: bool = True
    usager_can_move: bool = False
    enabled: bool = True


class MotifPatch(_In):
    name: Name | UnsetType = UNSET
    color: Colour | UnsetType = UNSET
    duration_minutes: Duration | UnsetType = UNSET
    location_type: Literal["public_office", "phone", "home", "visio"] | UnsetType = UNSET
    bookable_by: Literal["agents", "agents_and_prescripteurs", "everyone"] | UnsetType = UNSET
    min_delay_minutes: Delay | UnsetType = UNSET
    max_delay_minutes: Delay | UnsetType = UNSET
    instructions_before: Text | UnsetType = UNSET
    instructions_after: Text | UnsetType = UNSET
    usager_can_cancel: bool | UnsetType = UNSET
    usager_can_move: bool | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class UsagerIn(_In):
    first_name: Name
    last_name: Name
    email: UsagerEmail | None = None
    phone: Phone | None = None
    address: Address | None = None
    postcode: Postcode | None = None
    city: City | None = None
    notes: Text | None = None
    notify_by_email: bool = True
    notify_by_sms: bool = True


class UsagerPatch(_In):
    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    email: UsagerEmail | None | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    address: Address | None | UnsetType = UNSET
    postcode: Postcode | None | UnsetType = UNSET
    city: City | None | UnsetType = UNSET
    notes: Text | None | UnsetType = UNSET
    notify_by_email: bool | UnsetType = UNSET
    notify_by_sms: bool | UnsetType = UNSET


class Weekly(_In, tag="weekly", tag_field="frequency"):
    weekdays: Annotated[list[Weekday], Meta(min_length=1, max_length=7)]
    every_weeks: Annotated[int, Meta(ge=1, le=5)] = 1


class Monthly(_In, tag="monthly", tag_field="frequency"):
    """On the k-th weekday of every month (k = -1: the last one)."""

    weekday: Weekday
    nth: Annotated[int, Meta(ge=-1, le=5)]


class PlageIn(_In):
    """A plage d'ouverture: from ``first_day`` (and every recurrence) between
    ``start_time`` and ``end_time`` local time, ``until`` a last day
    included."""

    motif_ids: Annotated[list[Id], Meta(min_length=1)]
    first_day: LocalDate
    start_time: LocalTime
    end_time: LocalTime
    lieu_id: Id | None = None
    recurrence: Weekly | Monthly | None = None
    until: LocalDate | None = None
    title: Annotated[str, Meta(max_length=200)] = ""


class AbsenceIn(_In):
    """An indisponibilité; a date alone for ``ends_at`` means the end of that day."""

    starts_at: Moment
    ends_at: Moment
    title: Annotated[str, Meta(max_length=200)] = ""
    recurrence: Weekly | Monthly | None = None
    until: LocalDate | None = None


class RdvIn(_In):
    """An RDV of the motif's duration from ``starts_at``, in the agenda of
    ``agent_id``; usagers of the motif's organisation."""

    agent_id: Id
    motif_id: Id
    starts_at: Moment
    lieu_id: Id | None = None
    usager_ids: list[Id] = []
    status: Status = "unknown"
    # False: the usagers get no notification of this RDV (agents still do).
    notify_usagers: bool = True


class RdvPatch(_In):
    starts_at: Moment | UnsetType = UNSET
    lieu_id: Id | None | UnsetType = UNSET
    status: Status | UnsetType = UNSET


NotificationLevel = Literal["all", "others", "soon", "none"]


class NotificationSettingsPatch(_In):
    # Which RDV changes of the agent's agendas it is emailed: all, others (not
    # its own), soon (the old or new date is today or tomorrow), none.
    rdv_notifications_level: NotificationLevel


class FeedPatch(_In):
    with_availability: bool


def given(patch: Struct) -> dict:
    """The fields a PATCH body actually sets."""
    return {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not UNSET}


Model = Literal[
    "rdv", "absence", "plage_ouverture", "motif", "lieu", "agent", "usager", "organisation"
]


class WebhookEndpointIn(_In):
    target_url: Annotated[str, Meta(min_length=8, max_length=2000)]
    # Empty: RDV-SP's default, rdv, absence and plage_ouverture.
    subscriptions: Annotated[list[Model], Meta(max_length=8)] = []
    enabled: bool = True
    initial_sync: bool = True


class WebhookEndpointPatch(_In):
    target_url: Annotated[str, Meta(min_length=8, max_length=2000)] | UnsetType = UNSET
    subscriptions: Annotated[list[Model], Meta(min_length=1, max_length=8)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class SecretRotation(_In):
    # How long the previous secret keeps signing beside the new one (0: not at all).
    overlap_hours: Annotated[int, Meta(ge=0, le=24 * 14)] = 24


class M365ConnectionIn(_In):
    """An organisation's application connection to its Microsoft 365 tenant."""

    tenant_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9.\-]{1,100}$")]
    client_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-]{1,100}$")]
    client_secret: Annotated[str, Meta(min_length=1, max_length=1000)]


class InvitationIn(_In):
    """An invitation for a usager: the link books without typing an identity
    or checking an email.  The usager is the organisation's one with this
    email (made when there is none; names and phone of an existing one are
    kept)."""

    first_name: Name
    last_name: Name
    email: UsagerEmail | None = None
    phone: Phone | None = None
    motif_id: Id | None = None
    service_id: Id | None = None
    lieu_id: Id | None = None
    reference: Annotated[str, Meta(max_length=100)] | None = None
    valid_days: Annotated[int, Meta(ge=1, le=365)] = 30
