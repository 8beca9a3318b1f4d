"""Public CalDAV checkers run against a real calserver (slow; run on CI).

Each checker is held to a baseline kept beside this file, exactly: ground lost
fails, and so does ground gained until the baseline records it (see
``baseline.py`` for why, and for ``CALSERVER_CONFORMANCE_REGEN=1``, which
rewrites the baselines from the run instead of comparing).

- caldav-server-tester against ``calserver-baseline.json``: every feature's
  support level, ranked by ``server_tester.SUPPORT_ORDER``.
- the caldav functional suite against ``caldav-suite-baseline.json``: the exact
  sets of passed and skipped test ids, and no failure.

The tester baseline is itself held to at least stock Radicale 3.9's result,
with the same ordering, so it can never be lowered below Radicale quietly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.baseline import (
    REGEN_ENV,
    gate_message,
    load_baseline,
    regenerating,
    write_baseline,
)
from tests.conformance.caldav_suite import (
    compare_suite_with_baseline,
    prepare_caldav_suite,
    run_caldav_suite,
    suite_baseline,
)
from tests.conformance.server_tester import (
    REFERENCE_JSON,
    compare_with_baseline,
    report_to_keep,
    resolved_levels,
    run_server_tester,
)
from tests.conftest import ADMIN_PASSWORD, Server

pytestmark = pytest.mark.slow
BASELINE = Path(__file__).with_name("calserver-baseline.json")
SUITE_BASELINE = Path(__file__).with_name("caldav-suite-baseline.json")
SUITE_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "caldav-suite"


@pytest.fixture(params=["sqlite"])
def database_url(tmp_path: Path) -> str:
    """Conformance is about the protocol: one database is enough (the storage
    and protocol suites cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'conformance.db'}"


def _rewrote(path: Path) -> None:
    """End a regeneration run red, so it can never pass for a comparison."""
    pytest.fail(f"{REGEN_ENV}=1: rewrote {path.name}; review `git diff`, commit, rerun without it")


def test_baseline_is_at_least_stock_radicale() -> None:
    losses = compare_with_baseline(load_baseline(BASELINE), load_baseline(REFERENCE_JSON)).losses
    assert losses == [], "calserver baseline below stock Radicale 3.9:\n" + "\n".join(losses)
    levels = resolved_levels(load_baseline(BASELINE)["features"])
    assert levels["sync-token.limit"] == "full"
    assert resolved_levels(load_baseline(REFERENCE_JSON)["features"])["sync-token.limit"] != "full"


def test_server_tester_matches_baseline(server: Server) -> None:
    result = run_server_tester(server.dav, "admin", ADMIN_PASSWORD)
    if regenerating():
        write_baseline(BASELINE, report_to_keep(result))
        _rewrote(BASELINE)
    diff = compare_with_baseline(result, load_baseline(BASELINE))
    assert diff == ([], []), gate_message("caldav-server-tester", BASELINE, diff)


def test_caldav_functional_suite_matches_baseline(server: Server) -> None:
    tree = prepare_caldav_suite(SUITE_CACHE)
    features = load_baseline(BASELINE)["features"]
    result = run_caldav_suite(tree, server.dav, "admin", ADMIN_PASSWORD, features)
    print(
        f"caldav suite: {len(result['passed'])} passed, {len(result['skipped'])} skipped,"
        f" {len(result['failed'])} failed"
    )
    if regenerating():
        write_baseline(SUITE_BASELINE, suite_baseline(result))
        _rewrote(SUITE_BASELINE)
    diff = compare_suite_with_baseline(result, load_baseline(SUITE_BASELINE))
    assert diff == ([], []), gate_message("caldav functional suite", SUITE_BASELINE, diff)
