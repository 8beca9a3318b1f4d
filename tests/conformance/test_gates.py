"""The conformance gates' comparisons on plain data (fast: no server, no checker run).

The slow gates in ``test_conformance.py`` are only as strict as these
comparisons, so each way of losing ground is shown to fail here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from caldav.compatibility_hints import VALID_SUPPORT_LEVELS

from tests.conformance.baseline import REGEN_ENV, gate_message, load_baseline
from tests.conformance.caldav_suite import (
    SuiteResult,
    compare_suite_with_baseline,
    suite_baseline,
)
from tests.conformance.server_tester import (
    SUPPORT_ORDER,
    compare_with_baseline,
    report_to_keep,
    support_rank,
)

TESTER_BASELINE = Path(__file__).with_name("calserver-baseline.json")


def _report_with(**levels: str) -> dict[str, Any]:
    """The kept tester baseline with some features set to other levels."""
    report = copy.deepcopy(load_baseline(TESTER_BASELINE))
    for name, level in levels.items():
        report["features"][name.replace("_", "-")] = {"support": level}
    return report


def test_support_order_ranks_every_caldav_level_once() -> None:
    listed = [level for group in SUPPORT_ORDER for level in group]
    assert sorted(listed) == sorted(VALID_SUPPORT_LEVELS)
    assert support_rank("full") < support_rank("quirk") == support_rank("fragile")
    assert support_rank("fragile") < support_rank("unsupported") < support_rank("unknown")
    assert support_rank("unknown") < support_rank("ungraceful") < support_rank("broken")
    assert support_rank("some-new-level") > support_rank("broken")


def test_identical_tester_reports_pass() -> None:
    baseline = load_baseline(TESTER_BASELINE)
    assert compare_with_baseline(copy.deepcopy(baseline), baseline) == ([], [])


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("full", "ungraceful"),  # a feature starting to answer 500
        ("unsupported", "ungraceful"),  # once ranked alike: passed quietly
        ("full", "unknown"),  # the probe itself gave up
        ("quirk", "unsupported"),
        ("ungraceful", "broken"),
    ],
)
def test_tester_feature_moving_down_is_a_loss(before: str, after: str) -> None:
    diff = compare_with_baseline(
        _report_with(freebusy_query=after), _report_with(freebusy_query=before)
    )
    assert diff.losses == [f"freebusy-query: {before} -> {after}"]
    assert diff.gains == []


def test_tester_feature_moving_up_is_a_gain_and_alike_levels_are_no_move() -> None:
    up = compare_with_baseline(
        _report_with(freebusy_query="full"), _report_with(freebusy_query="unsupported")
    )
    assert up == ([], ["freebusy-query: unsupported -> full"])
    aside = compare_with_baseline(
        _report_with(freebusy_query="fragile"), _report_with(freebusy_query="quirk")
    )
    assert aside == ([], [])


def test_kept_report_drops_only_what_changes_every_run() -> None:
    report = _report_with(freebusy_query="quirk") | {"ts": 1.0, "url": "http://127.0.0.1:1/dav/"}
    kept = report_to_keep(report)
    assert "ts" not in kept and "url" not in kept
    assert compare_with_baseline(kept, report) == ([], [])
    assert kept["features"] == report["features"]


def _suite(
    passed: list[str], skipped: list[str], failed: dict[str, str] | None = None
) -> SuiteResult:
    return SuiteResult(passed=passed, skipped=skipped, failed=failed or {})


SUITE_BASELINE = suite_baseline(_suite(["T::a", "T::b"], ["T::c"]))


def test_identical_suite_run_passes() -> None:
    assert compare_suite_with_baseline(_suite(["T::a", "T::b"], ["T::c"]), SUITE_BASELINE) == (
        [],
        [],
    )


@pytest.mark.parametrize(
    ("result", "loss"),
    [
        (_suite(["T::a"], ["T::b", "T::c"]), "T::b: passed -> skipped"),
        (
            _suite(["T::a"], ["T::c"], {"T::b": "500 Internal Server Error"}),
            "T::b: passed -> failed (500 Internal Server Error)",
        ),
        (_suite(["T::a", "T::b"], [], {"T::c": "boom"}), "T::c: skipped -> failed (boom)"),
        (_suite(["T::a", "T::b"], []), "T::c: skipped -> not run"),
        (
            _suite(["T::a", "T::b"], ["T::c"], {"T::new": "boom"}),
            "T::new: not in baseline -> failed (boom)",
        ),
    ],
)
def test_suite_losing_ground_is_a_loss(result: SuiteResult, loss: str) -> None:
    assert compare_suite_with_baseline(result, SUITE_BASELINE).losses == [loss]


def test_suite_improvement_and_new_test_are_gains_to_record() -> None:
    diff = compare_suite_with_baseline(_suite(["T::a", "T::b", "T::c"], ["T::new"]), SUITE_BASELINE)
    assert diff == ([], ["T::c: skipped -> passed", "T::new: not in baseline -> skipped"])
    message = gate_message("caldav functional suite", Path("caldav-suite-baseline.json"), diff)
    assert "gained ground:\n  T::c: skipped -> passed" in message
    assert f"{REGEN_ENV}=1" in message


def test_a_failing_run_cannot_become_a_baseline() -> None:
    with pytest.raises(ValueError, match="T::b"):
        suite_baseline(_suite(["T::a"], [], {"T::b": "boom"}))
