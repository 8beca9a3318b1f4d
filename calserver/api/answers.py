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


class Me(Agent):
    organisations: list[Membership]
    service_ids: list[int]


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
    state: Literal["ok", "broken"]
    broken_reason: str | None
    updated_at: Instant


class M365Call(_Out):
    """One Graph call of an agent's sync log (no event content)."""

    id: int
    item_id: int | None
    at: Instant
    operation: Literal["create", "update", "delete", "reconcile"]
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
