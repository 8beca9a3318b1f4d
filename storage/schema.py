"""The SQL schema, in SQLAlchemy Core.

The calendar part follows the shape of sabre/dav's schema: each item carries the
enclosing time range of all its occurrences so that a time-range REPORT is an
indexed query, and a change log keyed by a per-collection revision makes
getctag/sync-token O(1) and sync-collection O(changes).  Recurring items also
get one row per occurrence (up to a horizon) in ``item_ranges`` so that a
time-range query over a recurring series is answered exactly in SQL instead of
re-expanding every series in Python.

The Alembic migrations under ``storage/migrations`` create exactly these tables;
this module is the one description both the code and the first migration use.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _organisation_id() -> Column:
    """The owning organisation of a record; the record goes with it."""
    return Column(
        "organisation_id",
        Integer,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    )


organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("slug", String(100), nullable=False, unique=True),
    Column("time_zone", String(64), nullable=False, server_default="Europe/Paris"),
    Column("holiday_zone", String(16), nullable=False, server_default="metropole"),
    # Journée de solidarité: whether Pentecost Monday is a working day.
    Column("pentecost_worked", Boolean, nullable=False, server_default="0"),
    # Whether agents may book an RDV over another one (never for usagers).
    Column("overbooking_allowed", Boolean, nullable=False, server_default="0"),
    # Contact shown to usagers (booking page, notifications).
    Column("contact_email", String(320), nullable=True),
    Column("contact_phone", String(40), nullable=True),
    Column("contact_address", String(400), nullable=True),
)

services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("name", String(200), nullable=False),
    # Its members see every agenda and search every motif of the organisation.
    Column("secretariat", Boolean, nullable=False, server_default="0"),
    # Disabled: kept for the motifs and agents that name it, offered to no new one.
    Column("enabled", Boolean, nullable=False, server_default="1"),
    UniqueConstraint("organisation_id", "name"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(100), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("email", String(320), nullable=True),
    # NULL for an intervenant: an agenda without a login.
    Column("password_hash", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Whether OPAQUE events of the agent's other calendars block booking.
    Column("other_calendars_block", Boolean, nullable=False, server_default="1"),
    # SHA-256 of the Webcal feed's secret; the secret itself is shown to the
    # agent once, when made, and never stored.
    Column("feed_token_hash", String(64), nullable=True, unique=True),
    # Whether the feed also carries the agent's absences and plages.
    Column("feed_with_availability", Boolean, nullable=False, server_default="0"),
    # Which RDV changes of its agendas the agent is emailed: all, others (not
    # its own), soon (the old or new date is today or tomorrow), none.
    Column("rdv_notifications_level", String(8), nullable=False, server_default="others"),
    # The server's operator: creates organisations and acts as an admin of
    # every one through the API.  Set only by the command line.
    Column("operator", Boolean, nullable=False, server_default="0"),
    # When the agent was deactivated (POSIX seconds); NULL: active.  A
    # deactivated agent cannot log in and its agendas are read-only.
    Column("deactivated_at", BigInteger, nullable=True),
)

# An agent's role in one organisation: admin, basic or intervenant.
agent_roles = Table(
    "agent_roles",
    metadata,
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "organisation_id",
        Integer,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", String(16), nullable=False),
)

agent_services = Table(
    "agent_services",
    metadata,
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)

collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    # Sanitized path without leading/trailing slash: "alice", "alice/rdv".
    Column("path", String(400), nullable=False, unique=True),
    Column("parent_path", String(400), nullable=False, index=True),
    Column("owner", String(100), nullable=False),
    # principal / rdv / plages / indisponibilites / other
    Column("kind", String(32), nullable=False, server_default="other"),
    # JSON object of WebDAV properties as Radicale names them ("tag", "D:displayname", ...).
    Column("props", Text, nullable=False, server_default="{}"),
    Column("revision", BigInteger, nullable=False, server_default="0"),
    # Random per incarnation: a collection deleted and re-created never reuses a sync token.
    Column("sync_id", String(32), nullable=False),
    Column("modified_at", BigInteger, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "collection_id",
        Integer,
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("href", String(400), nullable=False),
    Column("uid", String(400), nullable=False),
    Column("etag", String(80), nullable=False),
    Column("component", String(16), nullable=False),
    Column("text", Text, nullable=False),
    # Enclosing time range of all occurrences, POSIX seconds; open-ended RRULE = far future.
    Column("t_start", BigInteger, nullable=False),
    Column("t_end", BigInteger, nullable=False),
    # NULL: the item has one time range, [t_start, t_end) is exact.  Otherwise the
    # item_ranges rows list every occurrence ending before this timestamp.
    Column("ranges_until", BigInteger, nullable=True),
    Column("revision", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    UniqueConstraint("collection_id", "href"),
    Index("ix_items_collection_uid", "collection_id", "uid"),
    Index("ix_items_collection_range", "collection_id", "t_start", "t_end"),
    # Listings of heads (PROPFIND Depth 1, sync-collection) read this index
    # alone: the table's rows hold the texts, two or three to a page.
    Index(
        "ix_items_collection_heads",
        "collection_id",
        "id",
        "href",
        "etag",
        "component",
        "modified_at",
        "revision",
    ),
)

item_ranges = Table(
    "item_ranges",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("r_start", BigInteger, nullable=False),
    Column("r_end", BigInteger, nullable=False),
    Index("ix_item_ranges_item_start", "item_id", "r_start"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "collection_id",
        Integer,
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("revision", BigInteger, nullable=False),
    Column("href", String(400), nullable=False),
    # created / modified / deleted
    Column("operation", String(8), nullable=False),
    Index("ix_changes_collection_revision", "collection_id", "revision"),
)

lieux = Table(
    "lieux",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("name", String(200), nullable=False),
    Column("address", String(400), nullable=False),
    Column("phone", String(40), nullable=True),
    # Soft delete: RDVs keep pointing at a disabled lieu.
    Column("enabled", Boolean, nullable=False, server_default="1"),
)

motifs = Table(
    "motifs",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("service_id", Integer, ForeignKey("services.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("color", String(7), nullable=False, server_default="#1f6feb"),
    Column("duration_minutes", Integer, nullable=False, server_default="30"),
    Column("location_type", String(16), nullable=False, server_default="public_office"),
    Column("bookable_by", String(32), nullable=False, server_default="agents"),
    Column("min_delay_minutes", Integer, nullable=False, server_default="30"),
    Column("max_delay_minutes", Integer, nullable=False, server_default="129600"),
    Column("instructions_before", Text, nullable=False, server_default=""),
    Column("instructions_after", Text, nullable=False, server_default=""),
    Column("usager_can_cancel", Boolean, nullable=False, server_default="1"),
    Column("usager_can_move", Boolean, nullable=False, server_default="0"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    UniqueConstraint("organisation_id", "name", "location_type"),
)

# Personal data (RGPD): read only by authorised agents, never logged or fed.
usagers = Table(
    "usagers",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("address", String(400), nullable=True),
    # Structured, for what may be said of a home visit outside (a feed's
    # LOCATION): the free-text address never leaves.
    Column("postcode", String(10), nullable=True),
    Column("city", String(200), nullable=True),
    Column("notes", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # The usager's own choices of channel for notifications.
    Column("notify_by_email", Boolean, nullable=False, server_default="1"),
    Column("notify_by_sms", Boolean, nullable=False, server_default="1"),
    # " dupont marie": the names' words, lower-cased without accents, each
    # after a space, for the search by first letters (storage.text.name_key).
    Column("search_key", String(420), nullable=False, server_default=""),
    # An email is one usager's within an organisation; stored trimmed and
    # lower-cased (storage.scheduling.normalised_email); NULLs do not collide.
    Index("ix_usagers_organisation_id_email", "organisation_id", "email", unique=True),
)

# What the booking engine reads of an item of an agent's calendars: one row
# per plage, absence, RDV or other event, written in the transaction that
# writes the item (the iCalendar text stays the source of truth).
agenda_events = Table(
    "agenda_events",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    # plage / absence / rdv / event
    Column("kind", String(8), nullable=False),
    Column("uid", String(400), nullable=False),
    # What feeds and links outside call the event (the client's UID may hold a
    # name): derived from the item's id, stable across writes and moves.
    Column("public_id", String(36), nullable=False),
    Column("organisation_id", Integer, nullable=True),
    Column("motif_id", Integer, nullable=True),
    Column("lieu_id", Integer, nullable=True),
    Column("status", String(16), nullable=True),
    # An RDV's SEQUENCE, for feeds built from the index alone.
    Column("sequence", Integer, nullable=False, server_default="0"),
    # JSON list of motif ids a plage offers; NULL: every motif of the agent's services.
    Column("motif_ids", Text, nullable=True),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    # Occurrences are stored up to this instant; later ones are expanded on demand.
    Column("expanded_until", BigInteger, nullable=False),
    Index("ix_agenda_events_agent_kind_start", "agent_id", "kind", "starts_at"),
    Index("ix_agenda_events_public_id", "public_id", unique=True),
    # An organisation's RDV lists, exports and statistics over a period.
    Index("ix_agenda_events_organisation_kind_start", "organisation_id", "kind", "starts_at"),
)

# The usagers of each indexed RDV, for a usager's history and the RDV lists.
rdv_usagers = Table(
    "rdv_usagers",
    metadata,
    Column(
        "item_id",
        Integer,
        ForeignKey("agenda_events.item_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("usager_id", Integer, primary_key=True),
    Index("ix_rdv_usagers_usager_id", "usager_id"),
)

# Occurrences that matter for booking: every plage occurrence, and the busy
# time of absences, RDVs holding their slot and OPAQUE events.
agenda_occurrences = Table(
    "agenda_occurrences",
    metadata,
    Column(
        "item_id",
        Integer,
        ForeignKey("agenda_events.item_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("agent_id", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("r_start", BigInteger, nullable=False),
    Column("r_end", BigInteger, nullable=False),
    # Covering: a window query reads the index only.
    Index(
        "ix_agenda_occurrences_agent_kind_start",
        "agent_id",
        "kind",
        "r_start",
        "r_end",
        "item_id",
    ),
    Index("ix_agenda_occurrences_item", "item_id"),
)

# -- the outbox: every change that leaves the server ----------------------------

# One row per change of a record and organisation it concerns, written in the
# transaction of the change.  ``data`` is the record's snapshot without
# personal data (an RDV's ids, times and status); consumers read the rest at
# delivery time.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    # The organisation whose consumers may receive it (no key: events outlive it).
    Column("organisation_id", Integer, nullable=False),
    # rdv / absence / plage_ouverture / motif / lieu / agent / usager / organisation
    Column("model", String(32), nullable=False),
    Column("record_id", Integer, nullable=False),
    # created / updated / destroyed
    Column("event", String(16), nullable=False),
    # Per record, 1, 2, 3...: a consumer drops an event older than one it has.
    Column("sequence", Integer, nullable=False),
    # JSON list of what changed (booking.changes for agenda records, field names otherwise).
    Column("changes", Text, nullable=False),
    Column("data", Text, nullable=False),
    # NULL for a change; "initial_sync" for a replay of current state.
    Column("reason", String(32), nullable=True),
    # A replay is for one webhook endpoint only.
    Column("endpoint_id", Integer, nullable=True),
    # Not yet handed to its consumers (webhook deliveries).
    Column("pending", Boolean, nullable=False, server_default="1"),
    Index("ix_outbox_events_pending_id", "pending", "id"),
)

# The last state the outbox told of each record, and its sequence: the "old"
# side of the next change.  Personal fields are kept as digests, enough to
# tell that they changed.
outbox_records = Table(
    "outbox_records",
    metadata,
    # "item:<items.id>" for agenda records (an item may change model), else "<model>:<id>".
    Column("key", String(80), primary_key=True),
    Column("model", String(32), nullable=False),
    Column("sequence", Integer, nullable=False),
    # JSON; NULL once destroyed.
    Column("state", Text, nullable=True),
)

# The organisations each told record belongs to (its state's
# ``organisation_ids``), so that an initial sync reads one organisation's
# records by index.  Written with the record's state (``outbox._remember``).
outbox_record_organisations = Table(
    "outbox_record_organisations",
    metadata,
    Column("organisation_id", Integer, primary_key=True),
    Column("key", String(80), primary_key=True),
    Index("ix_outbox_record_organisations_key", "key"),
)

# Where an organisation's DSI receives its webhooks.  The secret signs every
# request; after a rotation the previous one keeps signing until
# ``previous_secret_until``.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("target_url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_until", BigInteger, nullable=True),
    # JSON list of outbox models.
    Column("subscriptions", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    # Why the server turned it off (a 410 from the target), for the admin.
    Column("disabled_reason", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Not before this time (ms): a 429/503 with Retry-After holds back all of
    # the endpoint's deliveries, not just the one answered.
    Column("not_before_ms", BigInteger, nullable=True),
    UniqueConstraint("organisation_id", "target_url"),
)

# One event to send to one endpoint, until it is delivered or given up.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "event_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("outbox_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # pending / delivered / failed (given up, or the endpoint is gone)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When it is due; a claimed delivery is pushed past its lease, so a worker
    # that dies mid-send leaves it due again.
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("delivered_ms", BigInteger, nullable=True),
    # The event's record (``outbox.key_of``): one record's deliveries to one
    # endpoint are claimed one at a time, in event order.
    Column("record_key", String(80), nullable=False, server_default=""),
    UniqueConstraint("event_id", "endpoint_id"),
    Index("ix_webhook_deliveries_state_next_attempt_ms", "state", "next_attempt_ms"),
    Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    Index(
        "ix_webhook_deliveries_endpoint_id_record_key_event_id",
        "endpoint_id",
        "record_key",
        "event_id",
    ),
)

# The delivery log: every attempt, for the admin to read.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "delivery_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at_ms", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    # NULL when no answer came (refused address, connection error, timeout).
    Column("status_code", Integer, nullable=True),
    Column("error", String(200), nullable=True),
    # The start of the answer's body, for the admin (bounded).
    Column("response_excerpt", String(500), nullable=True),
)

# -- notifications -------------------------------------------------------------

# One message to send: to a usager (email or SMS) or an agent (email), for a
# change of an RDV or its reminder, written in the transaction of the change.
# ``rdv`` is the RDV's snapshot at that change (no personal data: ids, times,
# status, sequence); contact data and names are read when it is sent.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # The RDV's item (no key: a cancellation outlives a deleted item).
    Column("item_id", Integer, nullable=False),
    Column("organisation_id", Integer, nullable=False),
    # usager / agent
    Column("audience", String(8), nullable=False),
    Column("recipient_id", Integer, nullable=False),
    # email / sms
    Column("channel", String(8), nullable=False),
    # created / updated / cancelled / reminder
    Column("kind", String(16), nullable=False),
    Column("rdv", Text, nullable=False),
    # The "Infos et annulation" token in clear, only while the message waits;
    # the link table keeps its HMAC.
    Column("link_token", String(8), nullable=True),
    # pending / sent / failed (permanent failure or given up) / skipped /
    # dropped (a reminder no longer wanted)
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When it is due; a claimed row is pushed past its lease, so a worker that
    # dies mid-send leaves it due again.
    Column("due_ms", BigInteger, nullable=False),
    # When it was first due (now, or a reminder's moment): retries are given
    # up that long after, and the messages of one change share it.
    Column("created_ms", BigInteger, nullable=False),
    # When it stopped waiting (sent, failed, skipped, dropped): the retention
    # ([notifications] keep_*_days) counts from then; None while pending.
    Column("done_ms", BigInteger, nullable=True),
    Index("ix_notifications_state_due_ms", "state", "due_ms"),
    Index("ix_notifications_item_id", "item_id"),
    Index("ix_notifications_done_ms", "done_ms"),
)

# The receipts log: every attempt, readable by agents through the API.
notification_receipts = Table(
    "notification_receipts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "notification_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("notifications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("item_id", Integer, nullable=False, index=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("channel", String(8), nullable=False),
    # audience_kind: usager_created, agent_cancelled...
    Column("template", String(32), nullable=False),
    # Masked: "l***@example.org", "+33*******78".
    Column("recipient", String(80), nullable=True),
    # sent / retry / failed / skipped
    Column("status", String(8), nullable=False),
    Column("provider_id", String(200), nullable=True),
    Column("error", String(200), nullable=True),
    # How many SMS segments the text took (SMS only): what the provider bills.
    Column("segments", Integer, nullable=True),
)

# The "Infos et annulation" link of a usager's RDV: only the HMAC of its
# token, valid until the RDV ends; each notifying change makes a new one.
rdv_links = Table(
    "rdv_links",
    metadata,
    Column("item_id", Integer, primary_key=True),
    Column("usager_id", Integer, primary_key=True),
    Column("token_hmac", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

# Keys the server makes for itself at installation (the link HMAC key).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
)

# -- Microsoft 365: RDVs pushed into the agents' Outlook calendars ----------------

# An organisation's application connection to its Microsoft 365 tenant (set by
# its admins).  The client secret is stored encrypted (Fernet, the key in the
# configuration, never in the database).  ``state`` is ok or broken; broken
# (a refused secret, a revoked consent) stops the push until an admin sets it again.
m365_connections = Table(
    "m365_connections",
    metadata,
    Column(
        "organisation_id",
        Integer,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tenant_id", String(100), nullable=False),
    Column("client_id", String(100), nullable=False),
    # Sealed: the client secret, or the certificate's private key (PEM).
    Column("secret", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("broken_reason", String(200), nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    # The public certificate (PEM) when the app authenticates with one.
    Column("certificate", Text, nullable=True),
)

# An agent's own connection to its Outlook ("Connecter Outlook", delegated
# permission): the account it signed in as and its refresh token, sealed.
# While one exists (ok or broken) the agent's RDVs go through it, not
# through the organisation's application connection.
m365_delegations = Table(
    "m365_delegations",
    metadata,
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("account", String(320), nullable=False),
    Column("refresh_token", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("broken_reason", String(200), nullable=True),
    Column("connected_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# One row per RDV item the push has to think about: where its Outlook event
# lives (mailbox and Graph's immutable id), what was last pushed (a digest),
# and whether it must be looked at again (``dirty``, from ``due_ms``).  No key
# on items: the row outlives a deleted RDV until its event is deleted.
m365_links = Table(
    "m365_links",
    metadata,
    Column("item_id", Integer, primary_key=True),
    Column("agent_id", Integer, nullable=False),
    Column("organisation_id", Integer, nullable=False),
    Column("mailbox", String(320), nullable=True),
    Column("graph_id", String(400), nullable=True),
    Column("pushed", String(64), nullable=True),
    # Bumped when an event is recreated: a new transactionId for the new event.
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("dirty", Boolean, nullable=False, server_default="1"),
    # Bumped by every change told: a sync finishing clears only what it saw.
    Column("version", Integer, nullable=False, server_default="0"),
    Column("due_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_m365_links_dirty_due", "dirty", "due_ms"),
    Index("ix_m365_links_agent", "agent_id"),
)

# How far the push has read the outbox.
m365_cursor = Table(
    "m365_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
)

# The sync log: every call to Graph, per agent (no event content).
m365_sync_log = Table(
    "m365_sync_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("agent_id", Integer, nullable=False),
    Column("item_id", Integer, nullable=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("operation", String(16), nullable=False),
    Column("status", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("request_id", String(80), nullable=True),
    Column("error", String(200), nullable=True),
    Index("ix_m365_sync_log_agent_id", "agent_id", "id"),
)

# -- public pages ------------------------------------------------------------

# Keys the server keeps for itself (the public pages' session and CSRF key):
# made once by whichever process needs one first, shared by every process.
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
)

# A booking waiting for its usager to confirm their email (link or 6-digit
# code, 30 minutes).  Personal data: deleted a day after it expires.  ``id`` is
# random (it names the request in URLs); codes, links and the browser session
# that asked are kept as HMACs only.
booking_requests = Table(
    "booking_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    _organisation_id(),
    Column("motif_id", Integer, nullable=False),
    Column("lieu_id", Integer, nullable=True),
    Column("starts_at", BigInteger, nullable=False),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("phone", String(40), nullable=True),
    Column("notify_by_email", Boolean, nullable=False, server_default="1"),
    Column("notify_by_sms", Boolean, nullable=False, server_default="1"),
    Column("code_hash", String(64), nullable=False),
    Column("link_hash", String(64), nullable=False),
    Column("session_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    # Set once booked: where the RDV is.
    Column("agent_id", Integer, nullable=True),
    Column("rdv_uid", String(400), nullable=True),
    # The verification email (MIME text: it holds the code and the link in
    # clear) until the notification worker has sent it or given up, then
    # NULL; ``mail_due_ms`` is when it tries next (NULL: nothing to send).
    Column("mail", Text, nullable=True),
    Column("mail_due_ms", BigInteger, nullable=True, index=True),
    Column("mail_tries", Integer, nullable=False, server_default="0"),
    # The SMTP server refused the address for good: the code page says so.
    Column("mail_refused", Boolean, nullable=False, server_default="0"),
)

# An invitation another system (Démarches Simplifiées...) made for a usager:
# a link that books without typing an identity or checking an email.  The
# link's token is kept as an HMAC.
invitations = Table(
    "invitations",
    metadata,
    Column("id", Integer, primary_key=True),
    _organisation_id(),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("usager_id", Integer, ForeignKey("usagers.id", ondelete="CASCADE"), nullable=False),
    Column("service_id", Integer, nullable=True),
    Column("motif_id", Integer, nullable=True),
    Column("lieu_id", Integer, nullable=True),
    # The other system's own reference (a dossier number), sent back in webhooks.
    Column("reference", String(100), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("agent_id", Integer, nullable=True),
    Column("rdv_uid", String(400), nullable=True),
)
