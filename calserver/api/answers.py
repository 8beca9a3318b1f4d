"""What the API answers, as msgspec types: the OpenAPI document's response
schemas are generated from them (``calserver.api.openapi``).

The handlers build plain dictionaries; these types describe them and forbid
unknown fields, so the contract test (every documented operation driven over
HTTP, each answer validated against its schema) fails when a handler answers
a field the document does not name, or a time that is not ISO 8601.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from calserver.api.schemas import Model, NotificationLevel, Status

Instant = Annotated[
    str, Meta(extra_json_schema={"format": "date-time"}, description="ISO 8601 with its offset")
]
Role = Literal["admin", "basic", "intervenant"]


class _Out(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Error(_Out):
    code: str
    message: str
    existing_id: int | None = None


class ErrorAnswer(_Out):
    """Every refusal: ``code`` is stable, ``message`` is for a person;
    ``existing_id`` (409 ``exists``) names the record that already has the
    unique value."""

    error: Error


class Membership(_Out):
    id: int
    role: Role


class Agent(_Out):
    id: int
    login: str
    display_name: str
    email: str | None
    other_calendars_block: bool
    feed_with_availability: bool
    active: Annotated[bool, Meta(description="false: deactivated (no login, agendas read-only)")]


class Me(Agent):
    organisations: list[Membership]
    service_ids: list[int]
    operator: Annotated[bool, Meta(description="an operator of the server: creates organisations")]


class Member(Agent):
    role: Role
    service_ids: list[int]


class Organisation(_Out):
    id: int
    name: str
    slug: str
    time_zone: str
    holiday_zone: str
    pentecost_worked: bool
    overbooking_allowed: bool
    contact_email: str | None
    contact_phone: str | None
    contact_address: str | None


class Service(_Out):
    id: int
    organisation_id: int
    name: str
    secretariat: Annotated[
        bool,
        Meta(description="its members see every agenda and search every motif of the organisation"),
    ]
    enabled: bool


class Lieu(_Out):
    id: int
    organisation_id: int
    name: str
    address: str
    phone: str | None
    enabled: bool


class Motif(_Out):
    id: int
    organisation_id: int
    service_id: int
    name: str
    color: str
    duration_minutes: int
    location_type: str
    bookable_by: str
    min_delay_minutes: int
    max_delay_minutes: int
    instructions_before: str
    instructions_after: str
    usager_can_cancel: bool
    usager_can_move: bool
    enabled: bool


class Usager(_Out):
    id: int
    organisation_id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    address: str | None
    postcode: str | None
    city: str | None
    notes: str | None
    created_at: Instant
    notify_by_email: bool
    notify_by_sms: bool


class Person(_Out):
    id: int
    first_name: str
    last_name: str


class RdvRow(_Out):
    """An RDV of an organisation's list; times in the organisation's zone."""

    id: Annotated[str, Meta(description="its UID in the agent's agenda")]
    agent_id: int
    agent_name: str
    motif_id: int | None
    motif_name: str | None
    service_name: str | None
    lieu_id: int | None
    lieu_name: str | None
    status: Status
    starts_at: Instant
    ends_at: Instant
    usagers: list[Person]


class UsagerRdv(_Out):
    id: str
    agent_id: int
    motif_id: int | None
    lieu_id: int | None
    status: Status
    starts_at: Instant
    ends_at: Instant


class StatusCounts(_Out):
    unknown: int
    seen: int
    noshow: int
    excused: int
    revoked: int


class UsagerHistory(_Out):
    """A usager's RDVs in the agendas the reader may see: to come (by start)
    and past (latest first), and how many of each status."""

    usager_id: int
    upcoming: list[UsagerRdv]
    past: list[UsagerRdv]
    counts: StatusCounts


class MotifCount(_Out):
    motif_id: int | None
    motif_name: str | None
    count: int


class WeekCount(_Out):
    week: Annotated[str, Meta(description="ISO week, e.g. 2026-W48")]
    starts_on: Annotated[str, Meta(extra_json_schema={"format": "date"})]
    count: int


class Statistics(_Out):
    """RDVs starting in [from, to), counted by motif, status and ISO week
    (weeks in the organisation's zone, every week of the period listed)."""

    from_: Instant = field(name="from")
    to: Instant
    total: int
    by_motif: list[MotifCount]
    by_status: StatusCounts
    by_week: list[WeekCount]


class AgendaEntry(_Out):
    """A plage d'ouverture or an indisponibilité; times in the agent's zone."""

    id: str
    href: str
    title: str
    starts_at: Instant
    ends_at: Instant
    recurrence: (
        Annotated[
            str,
            Meta(
                description="the RFC 5545 RRULE as stored (its UNTIL in iCalendar's form, "
                "e.g. 20270101T225959Z)"
            ),
        ]
        | None
    )
    lieu_id: int | None
    motif_ids: list[int]


class Rdv(_Out):
    id: str
    agent_id: int
    motif_id: int | None
    lieu_id: int | None
    starts_at: Instant
    ends_at: Instant
    status: Status
    usager_ids: list[int]
    sequence: int
    notify_usagers: bool


class Feed(_Out):
    """The feed's URLs only in the answer that made them (first ``GET`` or a
    rotation); otherwise ``message`` says how to get new ones."""

    with_availability: bool
    rotate: Annotated[str, Meta(description="the path to POST to for a new URL")]
    message: str | None = None
    https: str | None = None
    webcal: str | None = None
    google: str | None = None


class Creneau(_Out):
    starts_at: Instant
    ends_at: Instant
    agent_id: int
    lieu_id: int | None
    agent_ids: list[int]


class Creneaux(_Out):
    motif_id: int
    from_: Instant = field(name="from")
    to: Instant
    creneaux: list[Creneau]


class NextCreneau(_Out):
    creneau: Creneau | None


class WebhookEndpoint(_Out):
    id: int
    organisation_id: int
    target_url: str
    subscriptions: list[Model]
    enabled: bool
    disabled_reason: str | None
    created_at: Instant
    previous_secret_valid_until: Instant | None


class WebhookEndpointWithSecret(WebhookEndpoint):
    """The only answers that show the secret."""

    secret: str


class WebhookEndpointCreated(WebhookEndpointWithSecret):
    initial_sync_events: int


class Replayed(_Out):
    initial_sync_events: int


class Redelivered(_Out):
    redelivered: int


class Attempt(_Out):
    at: Instant
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class Delivery(_Out):
    id: int
    event_id: int
    endpoint_id: int
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: Instant
    created_at: Instant
    delivered_at: Instant | None
    model: Model
    record_id: int
    event: Literal["created", "updated", "destroyed"]
    sequence: int
    reason: str | None
    attempts_log: list[Attempt]


class Receipt(_Out):
    """One attempt to notify, the recipient masked (``l***@example.org``)."""

    id: int
    notification_id: int
    at: Instant
    channel: str
    template: str
    recipient: str | None
    status: Literal["sent", "retry", "failed", "skipped"]
    provider_id: str | None
    error: str | None
    segments: Annotated[int | None, Meta(description="an SMS's segments; null for an email")]


class Waiting(_Out):
    id: int
    audience: str
    recipient_id: int
    channel: str
    kind: str
    due_at: Instant


class NotificationLog(_Out):
    receipts: list[Receipt]
    waiting: list[Waiting]


class NotificationSettings(_Out):
    rdv_notifications_level: NotificationLevel


class M365Connection(_Out):
    """An organisation's Microsoft 365 connection; never its secret."""

    organisation_id: int
    tenant_id: str
    client_id: str
    credential: Literal["secret", "certificate"]
    certificate_thumbprint: Annotated[
        str | None, Meta(description="SHA-256, hex; null with a client secret")
    ]
    state: Literal["ok", "broken"]
    broken_reason: str | None
    updated_at: Instant


class M365Delegation(_Out):
    """An agent's own connection to its Outlook ("Connecter Outlook"); never
    its tokens.  While it exists, the agent's RDVs go through it."""

    agent_id: int
    account: Annotated[str, Meta(description="the Microsoft account signed in")]
    state: Literal["ok", "broken"]
    broken_reason: str | None
    connected_at: Instant
    updated_at: Instant


class M365Call(_Out):
    """One Graph call of an agent's sync log (no event content)."""

    id: int
    item_id: int | None
    at: Instant
    operation: Literal["create", "update", "delete", "reconcile", "list"]
    status: Annotated[int | None, Meta(description="Graph's HTTP status; null: no answer")]
    duration_ms: int
    request_id: str | None
    error: str | None


class Invitation(_Out):
    id: int
    organisation_id: int
    usager_id: int
    motif_id: int | None
    service_id: int | None
    lieu_id: int | None
    reference: str | None
    created_at: Instant
    expires_at: Instant
    # Once booked: the RDV's agent and id (its UID).
    rdv_agent_id: int | None
    rdv_id: str | None


class InvitationCreated(Invitation):
    # The link to hand to the usager; shown in this answer only.
    link: str
