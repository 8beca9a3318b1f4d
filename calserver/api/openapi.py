"""The OpenAPI 3.1 document of /api/v1, with request schemas generated from
the very msgspec types that decode the bodies (they cannot drift apart)."""

from __future__ import annotations

import functools

import msgspec
from aiohttp import web

from calserver.api import schemas

# (method, path, summary, request body type or None, query parameters; "!" = required)
OPERATIONS: tuple[tuple[str, str, str, type | None, tuple[str, ...]], ...] = (
    ("get", "/me", "The logged-in agent, its organisations and services", None, ()),
    ("get", "/organisations/{org}", "An organisation and its settings", None, ()),
    ("patch", "/organisations/{org}", "Change settings (admin)", schemas.OrganisationPatch, ()),
    ("get", "/organisations/{org}/services", "Services", None, ()),
    ("post", "/organisations/{org}/services", "Create a service (admin)", schemas.ServiceIn, ()),
    ("get", "/organisations/{org}/agents", "Agents with role and services", None, ()),
    ("post", "/organisations/{org}/agents", "Create an agent (admin)", schemas.AgentIn, ()),
    ("patch", "/organisations/{org}/agents/{agent}", "Agent settings", schemas.AgentPatch, ()),
    ("get", "/organisations/{org}/lieux", "Lieux", None, ()),
    ("post", "/organisations/{org}/lieux", "Create a lieu (admin)", schemas.LieuIn, ()),
    ("get", "/organisations/{org}/lieux/{id}", "A lieu", None, ()),
    ("patch", "/organisations/{org}/lieux/{id}", "Change or disable a lieu", schemas.LieuPatch, ()),
    ("get", "/organisations/{org}/motifs", "Motifs", None, ()),
    ("post", "/organisations/{org}/motifs", "Create a motif (admin)", schemas.MotifIn, ()),
    ("get", "/organisations/{org}/motifs/{id}", "A motif", None, ()),
    ("patch", "/organisations/{org}/motifs/{id}", "Change a motif", schemas.MotifPatch, ()),
    ("get", "/organisations/{org}/usagers", "Usagers", None, ()),
    ("post", "/organisations/{org}/usagers", "Create a usager", schemas.UsagerIn, ()),
    ("get", "/organisations/{org}/usagers/{id}", "A usager", None, ()),
    ("patch", "/organisations/{org}/usagers/{id}", "Change a usager", schemas.UsagerPatch, ()),
    ("get", "/agents/{agent}/plages", "Plages d'ouverture", None, ()),
    ("post", "/agents/{agent}/plages", "Create a plage d'ouverture", schemas.PlageIn, ()),
    ("delete", "/agents/{agent}/plages/{uid}", "Delete a plage", None, ()),
    ("get", "/agents/{agent}/indisponibilites", "Indisponibilités", None, ()),
    ("post", "/agents/{agent}/indisponibilites", "Create an absence", schemas.AbsenceIn, ()),
    ("delete", "/agents/{agent}/indisponibilites/{uid}", "Delete an absence", None, ()),
    ("post", "/rdvs", "Book an RDV (409 when the slot is taken)", schemas.RdvIn, ()),
    ("get", "/agents/{agent}/rdvs", "RDVs starting in a window", None, ("from", "to")),
    ("get", "/agents/{agent}/rdvs/{uid}", "An RDV", None, ()),
    ("patch", "/agents/{agent}/rdvs/{uid}", "Move, relocate or set status", schemas.RdvPatch, ()),
    ("delete", "/agents/{agent}/rdvs/{uid}", "Cancel (revoke) an RDV; it stays", None, ()),
    (
        "get",
        "/agents/{agent}/rdvs/{uid}/notifications",
        "The RDV's notification receipts (masked recipients) and waiting messages",
        None,
        (),
    ),
    (
        "get",
        "/agents/{agent}/notification_settings",
        "Which RDV changes the agent is emailed",
        None,
        (),
    ),
    (
        "patch",
        "/agents/{agent}/notification_settings",
        "Set which RDV changes the agent is emailed (all, others, soon, none)",
        schemas.NotificationSettingsPatch,
        (),
    ),
    (
        "get",
        "/agents/{agent}/feed",
        "Feed URLs, shown once (first ask); then how to rotate",
        None,
        (),
    ),
    (
        "patch",
        "/agents/{agent}/feed",
        "Whether the feed carries availability",
        schemas.FeedPatch,
        (),
    ),
    (
        "post",
        "/agents/{agent}/feed/rotate",
        "A new feed URL (shown once); the old one is 404",
        None,
        (),
    ),
    (
        "get",
        "/creneaux",
        "Available slots of a motif",
        None,
        ("motif!", "from!", "to!", "lieu", "agents", "public"),
    ),
    (
        "get",
        "/creneaux/next",
        "Next available slot of a motif",
        None,
        ("motif!", "from", "lieu", "agents", "public"),
    ),
    *(
        (method, "/organisations/{org}/webhook_endpoints" + tail, summary, body, ())
        for method, tail, summary, body in (
            ("get", "", "Webhook endpoints (admin)", None),
            ("post", "", "Create one; its secret is shown once", schemas.WebhookEndpointIn),
            ("get", "/{id}", "A webhook endpoint", None),
            ("patch", "/{id}", "Change its target, models or state", schemas.WebhookEndpointPatch),
            ("delete", "/{id}", "Delete a webhook endpoint", None),
            (
                "post",
                "/{id}/rotate",
                "A new secret; the old one signs too for a while",
                schemas.SecretRotation,
            ),
            ("post", "/{id}/sync", "Replay current state as initial_sync events", None),
            ("get", "/{id}/deliveries", "The delivery log: deliveries and attempts", None),
            ("post", "/{id}/deliveries/{delivery}/redeliver", "Send one event again", None),
            ("post", "/{id}/redeliver_failed", "Send every failed delivery again", None),
        )
    ),
)
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
}


@functools.cache
def document() -> bytes:
    bodies = sorted({op[3] for op in OPERATIONS if op[3] is not None}, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(
        bodies, ref_template="#/components/schemas/{name}"
    )
    components["Error"] = _ERROR
    paths: dict[str, dict] = {}
    for method, path, summary, body_type, query in OPERATIONS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_names(path)
        ] + [
            {
                "name": name.rstrip("!"),
                "in": "query",
                "required": name.endswith("!"),
                "schema": {"type": "string"},
            }
            for name in query
        ]
        operation: dict = {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK"},
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if body_type is not None:
            ref = {"$ref": f"#/components/schemas/{body_type.__name__}"}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref}},
            }
        paths.setdefault(path, {})[method] = operation
    return msgspec.json.encode(
        {
            "openapi": "3.1.0",
            "info": {"title": "calserver API", "version": "1"},
            "servers": [{"url": "/api/v1"}],
            "components": {
                "schemas": components,
                "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            },
            "security": [{"basic": []}],
            "paths": paths,
        }
    )


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def serve(_request: web.Request) -> web.Response:
    return web.Response(body=document(), content_type="application/json")
