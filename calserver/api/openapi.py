"""The OpenAPI 3.1 document of /api/v1.

Request schemas come from the msgspec types that decode the bodies
(``schemas``), response schemas from the types that describe the answers
(``answers``): the document cannot drift from the decoder, and the contract
test (tests/protocol/test_api_contract.py) drives every operation listed here
over HTTP and validates each answer against its schema and statuses.

Statuses an operation may answer are listed in full: those of its own (403,
404, 409...) and those that follow from its shape, added here so no operation
forgets them: every one needs a login (401; 429 and 503 from the login
throttle and gate); a path or query parameter can be unreadable (400) or not
an id (422) and a path names something that may not exist or be visible
(404); a body can be unreadable (400), too large (413), of another content
type (415) or refused by its schema or a rule (422).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from calserver.api import answers, schemas
from calserver.api.base import MAX_BODY


class Query(NamedTuple):
    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] | None = None  # a string when left out


class Operation(NamedTuple):
    method: str
    path: str
    summary: str
    body: type | None = None
    # The success answer's type (a list of it when ``many``); None: no body.
    answer: type | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[Query, ...] = ()
    description: str = ""
    many: bool = False
    body_required: bool = True


ORG = "/organisations/{org}"
AGENT = "/agents/{agent}"
ENDPOINTS = ORG + "/webhook_endpoints"
M365 = ORG + "/m365/connection"
_MOMENT = (
    "a date (the day's start; for an end, the next day's start) or an ISO 8601 datetime; "
    "without an offset, the organisation's local time"
)
_SLOT_QUERY = (
    Query("lieu", "only at this lieu", schema={"type": "integer", "minimum": 1}),
    Query("agents", "comma-separated agent ids: only their slots"),
    Query(
        "public",
        "true: as usagers see them (motifs bookable by everyone, within the motif's booking "
        "delays)",
        schema={"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
    ),
)
_MOTIF_RULES = (
    "Enforced: duration a multiple of 5 minutes, from 5 to 720; booking delays between 30 "
    "minutes and one year, the maximum longer than the minimum; colour #rrggbb; a name, "
    "location type and organisation that no other motif has (409)."
)
_AGENDA_RIGHTS = (
    "Rights are the CalDAV rights of the agenda: the agent, the agents who share a service "
    "with it (RDVs only) and the admins of its organisations; others get 404, or 403 when "
    "they may read but not write."
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/me", "The logged-in agent, its organisations and services",
              answer=answers.Me),
    Operation("get", ORG, "An organisation and its settings", answer=answers.Organisation,
              description="Members of the organisation only (404 for others)."),
    Operation("patch", ORG, "Change settings (admin)", schemas.OrganisationPatch,
              answers.Organisation, errors=(403,),
              description="time_zone is an IANA zone; holiday_zone one of the zones listed "
                          "in its schema."),
    Operation("get", ORG + "/services", "Services", answer=answers.Service, many=True),
    Operation("post", ORG + "/services", "Create a service (admin)", schemas.ServiceIn,
              answers.Service, 201, (403, 409), description="409 when the name is taken."),
    Operation("get", ORG + "/agents", "Agents with role and services", answer=answers.Member,
              many=True),
    Operation("post", ORG + "/agents", "Create an agent (admin)", schemas.AgentIn,
              answers.Agent, 201, (403,),
              description="A login taken anywhere on the server is a 422 (invalid-agent)."),
    Operation("patch", ORG + "/agents/{agent}", "Agent settings (the agent or an admin)",
              schemas.AgentPatch, answers.Agent, errors=(403,)),
    Operation("get", ORG + "/lieux", "Lieux", answer=answers.Lieu, many=True),
    Operation("post", ORG + "/lieux", "Create a lieu (admin)", schemas.LieuIn, answers.Lieu,
              201, (403,)),
    Operation("get", ORG + "/lieux/{id}", "A lieu", answer=answers.Lieu),
    Operation("patch", ORG + "/lieux/{id}", "Change or disable a lieu (admin)",
              schemas.LieuPatch, answers.Lieu, errors=(403,),
              description="A disabled lieu stays on the RDVs that name it; it takes no new one."),
    Operation("get", ORG + "/motifs", "Motifs", answer=answers.Motif, many=True),
    Operation("post", ORG + "/motifs", "Create a motif (admin)", schemas.MotifIn,
              answers.Motif, 201, (403, 409), description=_MOTIF_RULES),
    Operation("get", ORG + "/motifs/{id}", "A motif", answer=answers.Motif),
    Operation("patch", ORG + "/motifs/{id}", "Change a motif (admin)", schemas.MotifPatch,
              answers.Motif, errors=(403, 409), description=_MOTIF_RULES),
    Operation("get", ORG + "/usagers", "Usagers", answer=answers.Usager, many=True),
    Operation("post", ORG + "/usagers", "Create a usager (any member)", schemas.UsagerIn,
              answers.Usager, 201, (409,),
              description="The email is stored trimmed and lower-cased; another usager of the "
                          "organisation with the same email is a 409 whose existing_id names "
                          "it, and nothing is written."),
    Operation("get", ORG + "/usagers/{id}", "A usager", answer=answers.Usager),
    Operation("patch", ORG + "/usagers/{id}", "Change a usager (any member)",
              schemas.UsagerPatch, answers.Usager, errors=(409,),
              description="An email another usager of the organisation has is a 409 naming "
                          "it (existing_id); nothing is written."),
    Operation("get", AGENT + "/plages", "Plages d'ouverture", answer=answers.AgendaEntry,
              many=True, errors=(403,), description=_AGENDA_RIGHTS),
    Operation("post", AGENT + "/plages", "Create a plage d'ouverture", schemas.PlageIn,
              answers.AgendaEntry, 201, (403,),
              description="Motifs of the agent's organisations; a lieu of theirs, required "
                          "when a motif is public_office; ends after it starts on the same "
                          "day; repeats at most once a day, until at most ten years ahead. "
                          + _AGENDA_RIGHTS),
    Operation("delete", AGENT + "/plages/{uid}", "Delete a plage", status=204, errors=(403,)),
    Operation("get", AGENT + "/indisponibilites", "Indisponibilités",
              answer=answers.AgendaEntry, many=True, errors=(403,), description=_AGENDA_RIGHTS),
    Operation("post", AGENT + "/indisponibilites", "Create an absence", schemas.AbsenceIn,
              answers.AgendaEntry, 201, (403,),
              description="Ends after it starts; RDVs already booked in it stay (cancel them "
                          "yourself). " + _AGENDA_RIGHTS),
    Operation("delete", AGENT + "/indisponibilites/{uid}", "Delete an absence", status=204,
              errors=(403,)),
    Operation("post", "/rdvs", "Book an RDV", schemas.RdvIn, answers.Rdv, 201, (403, 404, 409),
              description="Checked like every write: a motif of the agent's organisations, "
                          "still offered; an open lieu of that organisation; usagers of that "
                          "organisation; inside one occurrence of a plage of the agent that "
                          "offers the motif (and lieu); the motif's duration; no holiday, "
                          "absence, blocking event or other RDV (409 slot-unavailable). "
                          "404: no such agent. Other refusals are 422 with the rule's code."),
    Operation("get", AGENT + "/rdvs", "RDVs starting in a window (every RDV without dates)",
              answer=answers.Rdv, many=True, errors=(403,),
              query=(Query("from", _MOMENT), Query("to", _MOMENT))),
    Operation("get", AGENT + "/rdvs/{uid}", "An RDV", answer=answers.Rdv, errors=(403,)),
    Operation("patch", AGENT + "/rdvs/{uid}", "Move, relocate or set the status of an RDV",
              schemas.RdvPatch, answers.Rdv, errors=(403, 409),
              description="A move or a reinstatement is checked like a booking (409 when the "
                          "slot is taken); a status alone is always accepted."),
    Operation("delete", AGENT + "/rdvs/{uid}", "Cancel (revoke) an RDV; it stays, revoked",
              answer=answers.Rdv, errors=(403,)),
    Operation("get", AGENT + "/rdvs/{uid}/notifications",
              "The RDV's notification receipts (masked recipients) and waiting messages",
              answer=answers.NotificationLog, errors=(403,)),
    Operation("get", AGENT + "/notification_settings", "Which RDV changes the agent is emailed",
              answer=answers.NotificationSettings, errors=(403,),
              description="The agent and the admins of its organisations only."),
    Operation("patch", AGENT + "/notification_settings",
              "Set which RDV changes the agent is emailed (all, others, soon, none)",
              schemas.NotificationSettingsPatch, answers.NotificationSettings, errors=(403,)),
    Operation("get", AGENT + "/feed", "Feed URLs, shown once (first ask); then how to rotate",
              answer=answers.Feed, errors=(403,),
              description="The agent and the admins of its organisations only."),
    Operation("patch", AGENT + "/feed", "Whether the feed carries availability",
              schemas.FeedPatch, answers.Feed, errors=(403,)),
    Operation("post", AGENT + "/feed/rotate", "A new feed URL (shown once); the old one is 404",
              answer=answers.Feed, errors=(403,)),
    Operation("get", "/creneaux", "Available slots of a motif", answer=answers.Creneaux,
              errors=(404,),
              query=(
                  Query("motif", "the motif's id", True, {"type": "integer", "minimum": 1}),
                  Query("from", _MOMENT, True),
                  Query("to", _MOMENT + "; at most 93 days after from", True),
                  *_SLOT_QUERY,
              ),
              description="Searches from a year back to two years ahead; 503 (search-too-long) "
                          "when the search runs out of its 5 seconds."),
    Operation("get", "/creneaux/next", "Next available slot of a motif",
              answer=answers.NextCreneau, errors=(404,),
              query=(
                  Query("motif", "the motif's id", True, {"type": "integer", "minimum": 1}),
                  Query("from", _MOMENT + "; now when left out or past"),
                  *_SLOT_QUERY,
              ),
              description="Looks up to a year ahead (public: up to the motif's maximum delay); "
                          "creneau is null when nothing is free."),
    Operation("get", ENDPOINTS, "Webhook endpoints (admin)", answer=answers.WebhookEndpoint,
              many=True, errors=(403,)),
    Operation("post", ENDPOINTS, "Create a webhook endpoint; its secret is shown once",
              schemas.WebhookEndpointIn, answers.WebhookEndpointCreated, 201, (403, 409),
              description="https to a public address (422 invalid-target otherwise); 409 when "
                          "the organisation already has an endpoint at this URL."),
    Operation("get", ENDPOINTS + "/{id}", "A webhook endpoint", answer=answers.WebhookEndpoint,
              errors=(403,)),
    Operation("patch", ENDPOINTS + "/{id}", "Change its target, models or state",
              schemas.WebhookEndpointPatch, answers.WebhookEndpoint, errors=(403, 409)),
    Operation("delete", ENDPOINTS + "/{id}", "Delete a webhook endpoint", status=204,
              errors=(403,)),
    Operation("post", ENDPOINTS + "/{id}/rotate", "A new secret; the old one signs too for a "
              "while", schemas.SecretRotation, answers.WebhookEndpointWithSecret, errors=(403,),
              body_required=False),
    Operation("post", ENDPOINTS + "/{id}/sync", "Replay current state as initial_sync events",
              answer=answers.Replayed, status=202, errors=(403,)),
    Operation("get", ENDPOINTS + "/{id}/deliveries",
              "The delivery log: the latest 100 deliveries, each with its attempts",
              answer=answers.Delivery, many=True, errors=(403,)),
    Operation("post", ENDPOINTS + "/{id}/deliveries/{delivery}/redeliver",
              "Send one delivery again", answer=answers.Redelivered, status=202, errors=(403,)),
    Operation("post", ENDPOINTS + "/{id}/redeliver_failed", "Send every failed delivery again",
              answer=answers.Redelivered, status=202, errors=(403,)),
    Operation("post", ORG + "/invitations", "Invite a usager to book online (admin)",
              schemas.InvitationIn, answers.InvitationCreated, 201, (403,),
              description="Answers the link to the public booking page to hand to the usager "
                          "(shown once): it books for this usager without identity or email "
                          "check, once, until it expires; the RDV's webhook names the "
                          "invitation.  422 unknown-motif, unknown-service, unknown-lieu when "
                          "they are not the organisation's."),
    Operation("get", ORG + "/invitations/{id}", "An invitation, and the RDV it booked (admin)",
              answer=answers.Invitation, errors=(403,)),
    Operation("put", M365, "Connect the organisation's Microsoft 365 tenant (admin)",
              schemas.M365ConnectionIn, answers.M365Connection, errors=(403,),
              description="The client secret is stored encrypted and never shown again.  503 "
                          "m365-not-configured when the server has no [m365] key."),
    Operation("get", M365, "The Microsoft 365 connection's state (admin)",
              answer=answers.M365Connection, errors=(403,)),
    Operation("delete", M365, "Disconnect Microsoft 365 (admin); pushed events stay",
              status=204, errors=(403,)),
    Operation("get", ORG + AGENT + "/m365/log",
              "The agent's latest 100 Graph calls (the agent or an admin)",
              answer=answers.M365Call, many=True, errors=(403,)),
)  # fmt: skip

_JSON = "application/json"
_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# Status -> (description, headers) of the refusals, shared by the operations.
_REFUSALS: dict[int, tuple[str, dict]] = {
    400: ("Unreadable: the body is not JSON, or a URL parameter holds a control character", {}),
    401: (
        "No, malformed or wrong credentials (HTTP Basic, the CalDAV login)",
        {"WWW-Authenticate": {"description": "Basic challenge", "schema": {"type": "string"}}},
    ),
    403: ("Logged in, but without the right to do this", {}),
    404: ("Nothing there, or nothing you may see", {}),
    409: ("Conflict: the slot is taken, or a unique value is another record's", {}),
    413: (f"The body is over {MAX_BODY // 1024} KiB", {}),
    415: ("The body is not JSON: send Content-Type application/json (charset utf-8)", {}),
    422: ("A value, a parameter or a booking rule refuses; the code names which", {}),
    429: ("Too many failed logins from this address or for this login", _RETRY),
    503: ("Too many logins being checked at once, or a search out of time", _RETRY),
}
_DESCRIPTION = """\
Agents log in with HTTP Basic and their CalDAV credentials.

Every answer is JSON, refusals included: `{"error": {"code": "...", "message": "..."}}`
(`code` stable, `message` for a person; a 409 `exists` adds `existing_id`).  An unknown
path is a 404 and a method a path does not have a 405 with an `Allow` header, both in that
shape; an unexpected failure is a 500 `internal-error` and changes nothing.

A request with a body must send it as JSON: `Content-Type: application/json` (or
`application/<something>+json`), with no charset or `charset=utf-8`; anything else is a
415 and nothing is done.  Unknown fields in a body are refused (422).

Times in answers are ISO 8601 with their offset: agenda times in the organisation's
local time, record timestamps in UTC.  Times sent without an offset are the
organisation's local time.
"""


def _error_responses(operation: Operation) -> dict[int, dict]:
    statuses = {401, 429, 503, *operation.errors}
    if "{" in operation.path or operation.query:
        statuses |= {400, 422}
    if "{" in operation.path:
        statuses.add(404)
    if operation.body is not None:
        statuses |= {400, 413, 415, 422}
    return {s: {"$ref": f"#/components/responses/{s}"} for s in sorted(statuses)}


def _success(operation: Operation) -> dict:
    if operation.answer is None:
        return {"description": "Done; no body"}
    schema: dict = {"$ref": f"#/components/schemas/{operation.answer.__name__}"}
    if operation.many:
        schema = {"type": "array", "items": schema}
    return {"description": "Done", "content": {_JSON: {"schema": schema}}}


def _parameters(operation: Operation) -> list[dict]:
    found = []
    for name in _path_names(operation.path):
        schema = {"type": "string"} if name == "uid" else {"type": "integer", "minimum": 1}
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    for query in operation.query:
        found.append(
            {
                "name": query.name,
                "in": "query",
                "required": query.required,
                "description": query.description,
                "schema": query.schema or {"type": "string"},
            }
        )
    return found


@functools.cache
def document() -> bytes:
    types = {op.body for op in OPERATIONS if op.body} | {op.answer for op in OPERATIONS}
    types.discard(None)
    _, components = msgspec.json.schema_components(
        sorted(types | {answers.ErrorAnswer}, key=lambda t: t.__name__),
        ref_template="#/components/schemas/{name}",
    )
    error = {"$ref": "#/components/schemas/ErrorAnswer"}
    responses = {
        str(status): {
            "description": text,
            "content": {_JSON: {"schema": error}},
            **({"headers": headers} if headers else {}),
        }
        for status, (text, headers) in _REFUSALS.items()
    }
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        operation: dict = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "parameters": _parameters(op),
            "responses": {str(op.status): _success(op), **_error_responses(op)},
        }
        if op.description:
            operation["description"] = op.description
        if op.body is not None:
            ref = {"$ref": f"#/components/schemas/{op.body.__name__}"}
            operation["requestBody"] = {
                "required": op.body_required,
                "content": {_JSON: {"schema": ref}},
            }
        paths.setdefault(op.path, {})[op.method] = operation
    return msgspec.json.encode(
        {
            "openapi": "3.1.0",
            "info": {"title": "calserver API", "version": "1", "description": _DESCRIPTION},
            "servers": [{"url": "/api/v1"}],
            "components": {
                "schemas": components,
                "responses": responses,
                "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            },
            "security": [{"basic": []}],
            "paths": paths,
        }
    )


def _operation_id(op: Operation) -> str:
    words = [p.strip("{}") for p in op.path.split("/") if p]
    return "_".join([op.method, *words])


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def serve(_request: web.Request) -> web.Response:
    return web.Response(body=document(), content_type="application/json")
