"""The OpenAPI document: valid OpenAPI 3.1, one operation per route of the API
and a route per operation, the statuses every operation can answer."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from calserver.api import openapi
from calserver.app import add_api_routes

DOCUMENT = json.loads(openapi.document())


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


def test_every_route_is_documented_and_every_operation_routed() -> None:
    app = web.Application()
    add_api_routes(app)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(op.method, op.path) for op in openapi.OPERATIONS}
    # The document itself is served to anyone, outside the operations.
    assert routes - {("get", "/openapi.json")} == documented


def test_each_operation_lists_the_statuses_its_shape_can_answer() -> None:
    for op in openapi.OPERATIONS:
        statuses = set(DOCUMENT["paths"][op.path][op.method]["responses"])
        assert {str(op.status), "401", "429", "503"} <= statuses, op.path
        if op.body is not None:
            assert {"400", "413", "415", "422"} <= statuses, op.path
        if "{" in op.path:
            assert {"400", "404", "422"} <= statuses, op.path
        assert "default" not in statuses  # every status is named, none implied


def test_answer_times_are_checked_as_iso_8601() -> None:
    """The contract test's validator really checks ``date-time``: a POSIX
    timestamp where the document says ISO 8601 fails."""
    schema = {**DOCUMENT["components"]["schemas"]["Usager"], "components": DOCUMENT["components"]}
    validator = OAS31Validator(schema, format_checker=OAS31Validator.FORMAT_CHECKER)
    usager = {
        "id": 1, "organisation_id": 1, "first_name": "A", "last_name": "B", "email": None,
        "phone": None, "address": None, "postcode": None, "city": None, "notes": None,
        "created_at": "2026-11-29T11:04:11+00:00", "notify_by_email": True,
        "notify_by_sms": True,
    }  # fmt: skip
    validator.validate(usager)
    with pytest.raises(ValidationError):
        validator.validate({**usager, "created_at": 1795950482})
    with pytest.raises(ValidationError):
        validator.validate({**usager, "created_at": "1795950482"})
    with pytest.raises(ValidationError):  # a field the document does not name
        validator.validate({**usager, "secret": "x"})
