"""The API keeps its OpenAPI document: every documented operation is driven
over HTTP against one server per database, once as it should succeed and once
refused, and each answer's status must be one the document lists for that
operation and its body must validate against the documented schema
(``openapi-schema-validator``, formats checked: a time that is not ISO 8601
fails, so does a field the document does not name).

Then the hygiene of ``/api/v1`` as a whole: unknown paths and methods answer
JSON, and a body that is not JSON is a 415 that writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from openapi_schema_validator import OAS31Validator

from calserver.api.openapi import OPERATIONS, Operation
from m365.secrets import new_key
from storage import m365
from storage.database import Database
from tests.conftest import Server, start_server
from tests.dates import today, working_monday
from tests.protocol.office import Office, ok

API = "/api/v1"
# Webhooks to a closed loopback port: deliveries fail fast and are logged.
CONFIG = (
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\n"
    "retry_first_ms = 200\ntimeout_seconds = 2\npoll_seconds = 1\n"
    # Connections can be stored; nothing is pushed (no Graph to push to).
    f"[m365]\nkey = {new_key()}\nworker = false\n"
)
NOWHERE = "http://127.0.0.1:9"
TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}
MISSING = 999999


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(module_database_url, tmp_path_factory.mktemp("server"), extra_config=CONFIG)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def document(server: Server) -> dict:
    return ok(httpx.get(server.url + API + "/openapi.json"))


@dataclass
class World:
    """What the operations need, made once per server through the API: an
    organisation with an agent (basic), a lieu, a motif, a plage, a usager,
    an RDV, a webhook endpoint with a logged delivery."""

    office: Office
    usager: dict
    rdv: dict
    endpoint: dict
    delivery: int

    @property
    def admin(self) -> httpx.Client:
        return self.office.admin

    @property
    def agent(self) -> httpx.Client:
        return self.office.alice

    @property
    def org(self) -> str:
        return f"/organisations/{self.office.org}"

    @property
    def me(self) -> str:
        return f"/agents/{self.office.agent}"

    @property
    def endpoints(self) -> str:
        return f"{self.org}/webhook_endpoints"

    def new_plage(self) -> httpx.Response:
        return self.agent.post(f"{self.me}/plages", json=_plage(self))

    def new_absence(self) -> httpx.Response:
        day = working_monday(30).isoformat()
        absence = {"starts_at": f"{day}T12:00", "ends_at": f"{day}T13:00"}
        return self.agent.post(f"{self.me}/indisponibilites", json=absence)

    def rdv_body(self) -> dict:
        return {"agent_id": self.office.agent, "motif_id": self.office.motif,
                "lieu_id": self.office.lieu, "starts_at": next(self.office.slots)}  # fmt: skip


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    office = Office(server, login="contract")
    usager = {"first_name": "Camille", "last_name": "Durand", "email": "camille@example.org"}
    usager = ok(office.alice.post(f"/organisations/{office.org}/usagers", json=usager), 201)
    rdv = office.book_with(usager["id"])
    base = f"/organisations/{office.org}/webhook_endpoints"
    hook = {"target_url": f"{NOWHERE}/hook", "subscriptions": ["motif"]}
    endpoint = ok(office.admin.post(base, json=hook), 201)
    deadline = time.monotonic() + 10
    while (
        not (log := ok(office.admin.get(f"{base}/{endpoint['id']}/deliveries")))
        or not log[0]["attempts_log"]
    ):
        assert time.monotonic() < deadline, "the initial sync was never attempted"
        time.sleep(0.05)
    yield World(office, usager, rdv, endpoint, log[0]["id"])
    office.close()


Call = Callable[[World], httpx.Response]


# (method, path) -> (the call that succeeds, the call refused, its status).
CASES: dict[tuple[str, str], tuple[Call, Call, int]] = {
    ("get", "/me"): (
        lambda w: w.admin.get("/me"),
        lambda w: httpx.get(w.office.server.url + API + "/me"),
        401,
    ),
    ("get", "/organisations/{org}"): (
        lambda w: w.agent.get(w.org),
        lambda w: w.agent.get(f"/organisations/{MISSING}"),
        404,
    ),
    ("patch", "/organisations/{org}"): (
        lambda w: w.admin.patch(w.org, json={"contact_phone": "01 23 45 67 89"}),
        lambda w: w.agent.patch(w.org, json={"contact_phone": "01 23 45 67 89"}),
        403,
    ),
    ("get", "/organisations/{org}/services"): (
        lambda w: w.agent.get(f"{w.org}/services"),
        lambda w: w.agent.get(f"/organisations/{MISSING}/services"),
        404,
    ),
    ("post", "/organisations/{org}/services"): (
        lambda w: w.admin.post(f"{w.org}/services", json={"name": "Contrat"}),
        lambda w: w.admin.post(f"{w.org}/services", json={"name": "Contrat"}),
        409,
    ),
    ("get", "/organisations/{org}/agents"): (
        lambda w: w.agent.get(f"{w.org}/agents"),
        lambda w: w.agent.get(f"/organisations/{MISSING}/agents"),
        404,
    ),
    ("post", "/organisations/{org}/agents"): (
        lambda w: w.admin.post(f"{w.org}/agents", json={"login": "contract-new",
                                                          "password": "contract-new-1"}),
        lambda w: w.agent.post(f"{w.org}/agents", json={"login": "contract-other"}),
        403,
    ),
    ("patch", "/organisations/{org}/agents/{agent}"): (
        lambda w: w.agent.patch(f"{w.org}/agents/{w.office.agent}", json={"display_name": "A"}),
        lambda w: w.agent.patch(f"{w.org}/agents/{w.office.agent}", json={"nom": "A"}),
        422,
    ),
    ("get", "/organisations/{org}/lieux"): (
        lambda w: w.agent.get(f"{w.org}/lieux"),
        lambda w: w.agent.get(f"/organisations/{MISSING}/lieux"),
        404,
    ),
    ("post", "/organisations/{org}/lieux"): (
        lambda w: w.admin.post(f"{w.org}/lieux", json={"name": "Annexe", "address": "2 rue A"}),
        lambda w: w.agent.post(f"{w.org}/lieux", json={"name": "Annexe", "address": "2 rue A"}),
        403,
    ),
    ("get", "/organisations/{org}/lieux/{id}"): (
        lambda w: w.agent.get(f"{w.org}/lieux/{w.office.lieu}"),
        lambda w: w.agent.get(f"{w.org}/lieux/{MISSING}"),
        404,
    ),
    ("patch", "/organisations/{org}/lieux/{id}"): (
        lambda w: w.admin.patch(f"{w.org}/lieux/{w.office.lieu}", json={"phone": "0102030405"}),
        lambda w: w.admin.patch(f"{w.org}/lieux/{w.office.lieu}", content="x", headers=TEXT),
        415,
    ),
    ("get", "/organisations/{org}/motifs"): (
        lambda w: w.agent.get(f"{w.org}/motifs"),
        lambda w: w.agent.get(f"/organisations/{MISSING}/motifs"),
        404,
    ),
    ("post", "/organisations/{org}/motifs"): (
        lambda w: w.admin.post(f"{w.org}/motifs", json=_motif(w, "Contrat")),
        lambda w: w.admin.post(f"{w.org}/motifs", json=_motif(w, w.office.motif_name)),
        409,
    ),
    ("get", "/organisations/{org}/motifs/{id}"): (
        lambda w: w.agent.get(f"{w.org}/motifs/{w.office.motif}"),
        lambda w: w.agent.get(f"{w.org}/motifs/{MISSING}"),
        404,
    ),
    ("patch", "/organisations/{org}/motifs/{id}"): (
        lambda w: w.admin.patch(f"{w.org}/motifs/{w.office.motif}", json={"color": "#123456"}),
        lambda w: w.admin.patch(f"{w.org}/motifs/{w.office.motif}", json={"duration_minutes": 7}),
        422,
    ),
    ("get", "/organisations/{org}/usagers"): (
        lambda w: w.agent.get(f"{w.org}/usagers"),
        lambda w: w.agent.get(f"/organisations/{MISSING}/usagers"),
        404,
    ),
    ("post", "/organisations/{org}/usagers"): (
        lambda w: w.agent.post(f"{w.org}/usagers", json=_usager("dominique@example.org")),
        lambda w: w.agent.post(f"{w.org}/usagers", json=_usager("Camille@example.org")),
        409,
    ),
    ("get", "/organisations/{org}/usagers/{id}"): (
        lambda w: w.agent.get(f"{w.org}/usagers/{w.usager['id']}"),
        lambda w: w.agent.get(f"{w.org}/usagers/{MISSING}"),
        404,
    ),
    ("patch", "/organisations/{org}/usagers/{id}"): (
        lambda w: w.agent.patch(f"{w.org}/usagers/{w.usager['id']}", json={"city": "Metz"}),
        lambda w: w.agent.patch(f"{w.org}/usagers/{w.usager['id']}", json={"postcode": "5700"}),
        422,
    ),
    ("get", "/agents/{agent}/plages"): (
        lambda w: w.agent.get(f"{w.me}/plages"),
        lambda w: w.agent.get(f"/agents/{MISSING}/plages"),
        404,
    ),
    ("post", "/agents/{agent}/plages"): (
        lambda w: w.new_plage(),
        lambda w: w.agent.post(f"{w.me}/plages", json={**_plage(w), "end_time": "07:00"}),
        422,
    ),
    ("delete", "/agents/{agent}/plages/{uid}"): (
        lambda w: w.agent.delete(f"{w.me}/plages/{ok(w.new_plage(), 201)['id']}"),
        lambda w: w.agent.delete(f"{w.me}/plages/nothing-here"),
        404,
    ),
    ("get", "/agents/{agent}/indisponibilites"): (
        lambda w: w.agent.get(f"{w.me}/indisponibilites"),
        lambda w: w.admin.get(f"/agents/{MISSING}/indisponibilites"),
        404,
    ),
    ("post", "/agents/{agent}/indisponibilites"): (
        lambda w: w.new_absence(),
        lambda w: w.agent.post(
            f"{w.me}/indisponibilites", json={"starts_at": "2030-01-01T10:00", "ends_at": "x"}
        ),
        422,
    ),
    ("delete", "/agents/{agent}/indisponibilites/{uid}"): (
        lambda w: w.agent.delete(f"{w.me}/indisponibilites/{ok(w.new_absence(), 201)['id']}"),
        lambda w: w.agent.delete(f"{w.me}/indisponibilites/nothing-here"),
        404,
    ),
    ("post", "/rdvs"): (
        lambda w: w.agent.post("/rdvs", json=w.rdv_body()),
        lambda w: w.agent.post("/rdvs", json={**w.rdv_body(), "starts_at": w.rdv["starts_at"]}),
        409,
    ),
    ("get", "/agents/{agent}/rdvs"): (
        lambda w: w.agent.get(f"{w.me}/rdvs", params={"from": today().isoformat()}),
        lambda w: w.agent.get(f"{w.me}/rdvs", params={"from": "tomorrow"}),
        422,
    ),
    ("get", "/agents/{agent}/rdvs/{uid}"): (
        lambda w: w.agent.get(f"{w.me}/rdvs/{w.rdv['id']}"),
        lambda w: w.agent.get(f"{w.me}/rdvs/nothing-here"),
        404,
    ),
    ("patch", "/agents/{agent}/rdvs/{uid}"): (
        lambda w: w.agent.patch(f"{w.me}/rdvs/{w.rdv['id']}", json={"status": "seen"}),
        lambda w: w.agent.patch(f"{w.me}/rdvs/{w.rdv['id']}", json={"status": "bogus"}),
        422,
    ),
    ("delete", "/agents/{agent}/rdvs/{uid}"): (
        lambda w: w.agent.delete(f"{w.me}/rdvs/{w.rdv['id']}"),
        lambda w: w.agent.delete(f"{w.me}/rdvs/nothing-here"),
        404,
    ),
    ("get", "/agents/{agent}/rdvs/{uid}/notifications"): (
        lambda w: w.agent.get(f"{w.me}/rdvs/{w.rdv['id']}/notifications"),
        lambda w: w.agent.get(f"{w.me}/rdvs/nothing-here/notifications"),
        404,
    ),
    ("get", "/agents/{agent}/notification_settings"): (
        lambda w: w.agent.get(f"{w.me}/notification_settings"),
        lambda w: w.agent.get(f"/agents/{_admin_id(w)}/notification_settings"),
        403,
    ),
    ("patch", "/agents/{agent}/notification_settings"): (
        lambda w: w.agent.patch(f"{w.me}/notification_settings",
                                json={"rdv_notifications_level": "soon"}),
        lambda w: w.agent.patch(f"{w.me}/notification_settings",
                                json={"rdv_notifications_level": "sometimes"}),
        422,
    ),
    ("get", "/agents/{agent}/feed"): (
        lambda w: w.agent.get(f"{w.me}/feed"),
        lambda w: w.agent.get(f"/agents/{_admin_id(w)}/feed"),
        403,
    ),
    ("patch", "/agents/{agent}/feed"): (
        lambda w: w.agent.patch(f"{w.me}/feed", json={"with_availability": True}),
        lambda w: w.agent.patch(f"{w.me}/feed", content="with_availability=1", headers=TEXT),
        415,
    ),
    ("post", "/agents/{agent}/feed/rotate"): (
        lambda w: w.agent.post(f"{w.me}/feed/rotate"),
        lambda w: w.agent.post(f"/agents/{_admin_id(w)}/feed/rotate"),
        403,
    ),
    ("get", "/creneaux"): (
        lambda w: w.agent.get("/creneaux", params=_window(w)),
        lambda w: w.agent.get("/creneaux", params={**_window(w), "to": ""}),
        422,
    ),
    ("get", "/creneaux/next"): (
        lambda w: w.agent.get("/creneaux/next", params={"motif": w.office.motif}),
        lambda w: w.agent.get("/creneaux/next", params={"motif": MISSING}),
        404,
    ),
    ("get", "/organisations/{org}/webhook_endpoints"): (
        lambda w: w.admin.get(w.endpoints),
        lambda w: w.agent.get(w.endpoints),
        403,
    ),
    ("post", "/organisations/{org}/webhook_endpoints"): (
        lambda w: w.admin.post(w.endpoints, json={"target_url": f"{NOWHERE}/other"}),
        lambda w: w.admin.post(w.endpoints, json={"target_url": w.endpoint["target_url"]}),
        409,
    ),
    ("get", "/organisations/{org}/webhook_endpoints/{id}"): (
        lambda w: w.admin.get(f"{w.endpoints}/{w.endpoint['id']}"),
        lambda w: w.admin.get(f"{w.endpoints}/{MISSING}"),
        404,
    ),
    ("patch", "/organisations/{org}/webhook_endpoints/{id}"): (
        lambda w: w.admin.patch(f"{w.endpoints}/{w.endpoint['id']}", json={"enabled": True}),
        lambda w: w.admin.patch(f"{w.endpoints}/{w.endpoint['id']}", json={"subscriptions": []}),
        422,
    ),
    ("delete", "/organisations/{org}/webhook_endpoints/{id}"): (
        lambda w: w.admin.delete(f"{w.endpoints}/{_endpoint_id(w)}"),
        lambda w: w.admin.delete(f"{w.endpoints}/{MISSING}"),
        404,
    ),
    ("post", "/organisations/{org}/webhook_endpoints/{id}/rotate"): (
        lambda w: w.admin.post(f"{w.endpoints}/{w.endpoint['id']}/rotate"),
        lambda w: w.admin.post(
            f"{w.endpoints}/{w.endpoint['id']}/rotate", json={"overlap_hours": 1000}
        ),
        422,
    ),
    ("post", "/organisations/{org}/webhook_endpoints/{id}/sync"): (
        lambda w: w.admin.post(f"{w.endpoints}/{w.endpoint['id']}/sync"),
        lambda w: w.agent.post(f"{w.endpoints}/{w.endpoint['id']}/sync"),
        403,
    ),
    ("get", "/organisations/{org}/webhook_endpoints/{id}/deliveries"): (
        lambda w: w.admin.get(f"{w.endpoints}/{w.endpoint['id']}/deliveries"),
        lambda w: w.admin.get(f"{w.endpoints}/{MISSING}/deliveries"),
        404,
    ),
    ("post", "/organisations/{org}/webhook_endpoints/{id}/deliveries/{delivery}/redeliver"): (
        lambda w: w.admin.post(f"{_deliveries(w)}/{w.delivery}/redeliver"),
        lambda w: w.admin.post(f"{_deliveries(w)}/{MISSING}/redeliver"),
        404,
    ),
    ("post", "/organisations/{org}/webhook_endpoints/{id}/redeliver_failed"): (
        lambda w: w.admin.post(f"{w.endpoints}/{w.endpoint['id']}/redeliver_failed"),
        lambda w: w.agent.post(f"{w.endpoints}/{w.endpoint['id']}/redeliver_failed"),
        403,
    ),
    ("post", "/organisations/{org}/invitations"): (
        lambda w: w.admin.post(f"{w.org}/invitations", json=_invitation(w)),
        lambda w: w.agent.post(f"{w.org}/invitations", json=_invitation(w)),
        403,
    ),
    ("get", "/organisations/{org}/invitations/{id}"): (
        lambda w: w.admin.get(f"{w.org}/invitations/{_invitation_id(w)}"),
        lambda w: w.admin.get(f"{w.org}/invitations/{MISSING}"),
        404,
    ),
    ("put", "/organisations/{org}/m365/connection"): (
        lambda w: _connect(w),
        lambda w: w.agent.put(f"{w.org}/m365/connection", json=M365_CONNECTION),
        403,
    ),
    ("get", "/organisations/{org}/m365/connection"): (
        lambda w: ok(_connect(w)) and w.admin.get(f"{w.org}/m365/connection"),
        lambda w: w.agent.get(f"{w.org}/m365/connection"),
        403,
    ),
    ("delete", "/organisations/{org}/m365/connection"): (
        lambda w: ok(_connect(w)) and w.admin.delete(f"{w.org}/m365/connection"),
        lambda w: w.admin.delete(f"{w.org}/m365/connection"),
        404,
    ),
    ("get", "/organisations/{org}/agents/{agent}/m365/log"): (
        lambda w: _sync_log(w),
        lambda w: w.agent.get(f"{w.org}/agents/{_admin_id(w)}/m365/log"),
        403,
    ),
}  # fmt: skip


M365_CONNECTION = {"tenant_id": "contoso.example", "client_id": "c1", "client_secret": "s"}


def _connect(w: World) -> httpx.Response:
    return w.admin.put(f"{w.org}/m365/connection", json=M365_CONNECTION)


def _sync_log(w: World) -> httpx.Response:
    """The agent's sync log holding one call, written as the push writes it."""
    db = Database(w.office.server.database_url)
    try:
        with db.transaction(write=True) as conn:
            entry = m365.LogEntry(
                w.office.agent, None, 1_767_225_600_000, "create", None, 12, None, "timeout"
            )
            m365.write_log(conn, [entry])
    finally:
        db.dispose()
    answer = w.agent.get(f"{w.org}/agents/{w.office.agent}/m365/log")
    assert len(ok(answer)) == 1
    return answer


def _motif(w: World, name: str) -> dict:
    service = ok(w.admin.get(f"{w.org}/services"))[0]["id"]
    return {"name": name, "service_id": service}


def _usager(email: str) -> dict:
    return {"first_name": "Dominique", "last_name": "Martin", "email": email}


def _plage(w: World) -> dict:
    day = (today() + timedelta(days=2)).isoformat()
    return {"motif_ids": [w.office.motif], "lieu_id": w.office.lieu,
            "first_day": day, "start_time": "19:00", "end_time": "20:00"}  # fmt: skip


def _invitation(w: World) -> dict:
    return {"first_name": "Dominique", "last_name": "Martin", "motif_id": w.office.motif,
            "reference": "dossier-42", "valid_days": 7}  # fmt: skip


def _invitation_id(w: World) -> int:
    return ok(w.admin.post(f"{w.org}/invitations", json=_invitation(w)), 201)["id"]


def _admin_id(w: World) -> int:
    return ok(w.admin.get("/me"))["id"]


def _window(w: World) -> dict:
    first = w.office.first_day
    return {"motif": w.office.motif, "from": first.isoformat(),
            "to": (first + timedelta(days=6)).isoformat()}  # fmt: skip


def _deliveries(w: World) -> str:
    return f"{w.endpoints}/{w.endpoint['id']}/deliveries"


def _endpoint_id(w: World) -> int:
    created = w.admin.post(w.endpoints, json={"target_url": f"{NOWHERE}/gone"})
    return ok(created, 201)["id"]


def _problems(document: dict, op: Operation, answer: httpx.Response) -> list[str]:
    """What is wrong with an answer to ``op`` by the document's account."""
    where = f"{op.method.upper()} {op.path} -> {answer.status_code}"
    responses = document["paths"][op.path][op.method]["responses"]
    response = responses.get(str(answer.status_code))
    if response is None:
        return [f"{where}: status not documented ({sorted(responses)}): {answer.text[:200]}"]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if "content" not in response:
        return [] if answer.content == b"" else [f"{where}: a body where none is documented"]
    if answer.headers.get("Content-Type", "").split(";")[0] != "application/json":
        return [f"{where}: not JSON ({answer.headers.get('Content-Type')})"]
    schema = response["content"]["application/json"]["schema"]
    validator = OAS31Validator(
        {**schema, "components": document["components"]},
        format_checker=OAS31Validator.FORMAT_CHECKER,
    )
    return [
        f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(answer.json())
    ]


def test_every_documented_operation_answers_as_documented(world: World, document: dict) -> None:
    assert set(CASES) == {(op.method, op.path) for op in OPERATIONS}
    problems = []
    for op in OPERATIONS:
        succeed, refuse, refused_status = CASES[(op.method, op.path)]
        answer = succeed(world)
        if answer.status_code != op.status:
            problems.append(f"{op.method} {op.path}: {answer.status_code} {answer.text[:300]}")
        problems += _problems(document, op, answer)
        refusal = refuse(world)
        if refusal.status_code != refused_status:
            problems.append(f"{op.method} {op.path} refused: {refusal.status_code}")
        problems += _problems(document, op, refusal)
    assert not problems, "\n".join(problems)


def test_unknown_paths_and_methods_answer_json(server: Server, document: dict) -> None:
    error = {
        **document["components"]["schemas"]["ErrorAnswer"],
        "components": document["components"],
    }
    with httpx.Client(base_url=server.url) as client:
        for path in (API, API + "/", API + "/nothing", API + "/organisations/1/nothing"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not-found"
            OAS31Validator(error).validate(answer.json())
        wrong = client.put(API + "/me", json={})
        assert wrong.status_code == 405
        assert wrong.headers["Allow"] == "GET, HEAD"
        assert wrong.json()["error"]["code"] == "method-not-allowed"
        OAS31Validator(error).validate(wrong.json())


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Content-Type": "application/jsonx"},
        {},
    ],
    ids=["text", "form", "latin-1", "jsonx", "none"],
)
def test_a_body_that_is_not_json_is_415_and_writes_nothing(
    world: World, headers: dict[str, str]
) -> None:
    url = f"{world.org}/usagers"
    before = ok(world.agent.get(url))
    body = json.dumps(_usager("not.json@example.org")).encode()
    answer = world.agent.post(url, content=body, headers=headers)
    assert answer.request.headers.get("Content-Type") == headers.get("Content-Type")
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"]["code"] == "unsupported-media-type"
    assert ok(world.agent.get(url)) == before


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=UTF-8", "application/merge-patch+json"]
)
def test_json_with_a_charset_or_a_json_suffix_is_json(world: World, content_type: str) -> None:
    url = f"{world.org}/usagers/{world.usager['id']}"
    answer = world.agent.patch(url, content=b'{"phone": "0601020304"}',
                               headers={"Content-Type": content_type})  # fmt: skip
    assert ok(answer)["phone"] == "0601020304"


def test_a_409_exists_names_the_record_already_there(world: World) -> None:
    service = ok(world.admin.get(f"{world.org}/services"))[0]
    taken = {
        f"{world.org}/services": ({"name": service["name"]}, service["id"]),
        f"{world.org}/usagers": (_usager(" CAMILLE@example.org"), world.usager["id"]),
        world.endpoints: ({"target_url": world.endpoint["target_url"]}, world.endpoint["id"]),
    }
    for url, (body, existing) in taken.items():
        answer = world.admin.post(url, json=body)
        assert answer.status_code == 409, (url, answer.text)
        assert answer.json()["error"]["code"] == "exists"
        assert answer.json()["error"]["existing_id"] == existing, url
        assert f"(id {existing})" in answer.json()["error"]["message"]


def test_a_body_over_64_kib_is_413_and_writes_nothing(world: World) -> None:
    url = f"{world.org}/usagers"
    before = ok(world.agent.get(url))
    big = json.dumps({**_usager("big@example.org"), "notes": "x" * 70_000}).encode()
    # With a Content-Length, and chunked (no length: the body is read, then refused).
    for content in (big, iter([big[:1000], big[1000:]])):
        answer = world.agent.post(
            url, content=content, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 413, answer.text[:200]
        assert answer.json()["error"]["code"] == "too-large"
    assert "Content-Length" not in answer.request.headers
    assert ok(world.agent.get(url)) == before
