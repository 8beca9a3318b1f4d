"""The benchmarks' verdicts and exit codes, on plain data (no timing, no server)."""

from __future__ import annotations

from tests.bench.verdicts import (
    FAILED,
    OK,
    SETUP_ERROR,
    Kind,
    SetupError,
    Target,
    check,
    exit_code,
    failed,
    guarded,
    render,
    summary,
)

AT_MOST = Target("4 weeks / 1 week", 4.5)
AT_LEAST = Target("full / 304", 10.0, at_most=False)


def test_a_target_is_met_on_its_side_of_the_limit() -> None:
    assert AT_MOST.judge(4.5).met and not AT_MOST.judge(4.51).met
    assert AT_LEAST.judge(10.0).met and not AT_LEAST.judge(9.99).met


def test_a_value_not_measured_misses() -> None:
    verdict = AT_LEAST.judge(None)
    assert not verdict.met
    assert exit_code([verdict]) == FAILED


def test_all_targets_met_and_answers_right_exit_0() -> None:
    verdicts = [AT_MOST.judge(3.1), AT_LEAST.judge(40.0), check("slots", 480, 480)]
    assert exit_code(verdicts) == OK
    assert summary(verdicts) == "2 targets met, 0 missed; 1 answer checks passed, 0 failed"


def test_a_missed_target_exits_1_and_says_missed() -> None:
    verdicts = [AT_MOST.judge(5.0), AT_LEAST.judge(40.0)]
    assert exit_code(verdicts) == FAILED
    text = render(verdicts)
    assert "[MISSED      ] 4 weeks / 1 week <= 4.5: 5.00" in text
    assert text.endswith("1 targets met, 1 missed; 0 answer checks passed, 0 failed")


def test_a_wrong_answer_exits_1_even_when_every_target_is_met() -> None:
    verdicts = [AT_MOST.judge(1.0), check("events in the feed", 2000, 1999)]
    assert exit_code(verdicts) == FAILED
    assert "[WRONG       ] events in the feed: expected 2000, got 1999" in render(verdicts)


def test_a_failed_request_is_a_wrong_answer() -> None:
    verdict = failed("POST /rdvs", "HTTP 409")
    assert verdict.kind is Kind.CHECK and exit_code([verdict]) == FAILED


def test_guides_and_quick_runs_report_without_gating() -> None:
    guide = Target("booking p50 ms", 20.0, kind=Kind.GUIDE).judge(35.0)
    quick = AT_MOST.judge(9.0, gated=False)
    assert not guide.met and not quick.met
    assert exit_code([guide, quick]) == OK
    assert "[guide missed] 4 weeks / 1 week <= 4.5: 9.00" in render([quick])


def test_where_a_target_was_measured_is_part_of_its_name() -> None:
    assert AT_LEAST.judge(12.0, where="N=10000").what == "full / 304 >= 10 at N=10000"


def test_a_setup_error_exits_2() -> None:
    def run() -> int:
        raise SetupError("calserver did not answer within 60 s")

    assert guarded(run) == SETUP_ERROR
    assert guarded(lambda: FAILED) == FAILED
