"""Public CalDAV checkers run against a real calserver (slow; run on CI).

The tester's result is compared with the baseline kept beside this file
(``calserver-baseline.json``): any feature whose support level drops fails.
The baseline itself is checked against stock Radicale 3.9's result, so it can
never be lowered below Radicale without this file saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.caldav_suite import prepare_caldav_suite, run_caldav_suite
from tests.conformance.server_tester import (
    REFERENCE_JSON,
    compare_with_baseline,
    resolved_levels,
    run_server_tester,
)
from tests.conftest import ADMIN_PASSWORD, Server

pytestmark = pytest.mark.slow
BASELINE = Path(__file__).with_name("calserver-baseline.json")
SUITE_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "caldav-suite"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(params=["sqlite"])
def database_url(tmp_path: Path) -> str:
    """Conformance is about the protocol: one database is enough (the storage
    and protocol suites cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'conformance.db'}"


def test_baseline_is_at_least_stock_radicale() -> None:
    assert compare_with_baseline(_load(BASELINE), _load(REFERENCE_JSON)) == []
    levels = resolved_levels(_load(BASELINE)["features"])
    assert levels["sync-token.limit"] == "full"
    assert resolved_levels(_load(REFERENCE_JSON)["features"])["sync-token.limit"] != "full"


def test_server_tester_finds_no_regression(server: Server) -> None:
    result = run_server_tester(server.dav, "admin", ADMIN_PASSWORD)
    assert compare_with_baseline(result, _load(BASELINE)) == []


def test_caldav_functional_suite(server: Server) -> None:
    tree = prepare_caldav_suite(SUITE_CACHE)
    result = run_caldav_suite(
        tree, server.dav, "admin", ADMIN_PASSWORD, _load(BASELINE)["features"]
    )
    print(f"caldav {result}")
    assert result["failures"] == []
    assert result["failed"] == 0 and result["errors"] == 0
    assert result["passed"] >= 60
