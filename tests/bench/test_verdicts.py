"""The benchmarks' verdicts and exit codes, on plain data (no timing, no server)."""

from __future__ import annotations

from tests.bench import caldav_bench
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
from tests.bench.workload import Expected

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
    assert summary([guide, quick]).endswith("0 failed; 2 guides (not gated)")
    assert "[guide missed] 4 weeks / 1 week <= 4.5: 9.00" in render([quick])


def test_where_a_target_was_measured_is_part_of_its_name() -> None:
    assert AT_LEAST.judge(12.0, where="N=10000").what == "full / 304 >= 10 at N=10000"


def test_a_setup_error_exits_2() -> None:
    def run() -> int:
        raise SetupError("calserver did not answer within 60 s")

    assert guarded(run) == SETUP_ERROR
    assert guarded(lambda: FAILED) == FAILED


def _server(seconds: float, answer: int = 5, rss: int = 100_000) -> caldav_bench.ServerResult:
    ops = {
        op: caldav_bench.Measure(seconds, [seconds], answer=answer, expected=5)
        for op in caldav_bench.LABELS
    }
    return caldav_bench.ServerResult(0.0, 0.0, "", rss, rss, ops)


def test_caldav_verdicts_gate_the_targets_and_every_answer() -> None:
    expected = {1000: Expected(5, 5), 10000: Expected(5, 5)}
    good = {n: {"radicale": _server(6.0), "calserver": _server(0.1)} for n in expected}
    found = caldav_bench.verdicts(good, expected, gated=True)
    assert exit_code(found) == OK
    assert summary(found).startswith("12 targets met, 0 missed; 32 answer checks passed")
    wrong = {**good, 10000: {"radicale": _server(6.0), "calserver": _server(0.1, answer=4)}}
    found = caldav_bench.verdicts(wrong, expected, gated=True)
    assert exit_code(found) == FAILED
    assert "[WRONG       ] calserver REPORT one week (etag+data) at N=10000: expected 5, got 4" in (
        render(found)
    )
    slow = {**good, 10000: {"radicale": _server(1.0), "calserver": _server(0.1)}}
    assert exit_code(caldav_bench.verdicts(slow, expected, gated=True)) == FAILED
    assert exit_code(caldav_bench.verdicts(slow, expected, gated=False)) == OK
    small = {1000: {"radicale": _server(1.0), "calserver": _server(0.1)}}
    found = caldav_bench.verdicts(small, expected, gated=True)
    assert exit_code(found) == OK and summary(found).startswith("0 targets met, 0 missed")


def test_caldav_a_failed_request_fails_the_run_only_from_calserver() -> None:
    expected = {10000: Expected(5, 5)}
    timed_out = caldav_bench.Measure(failure="ReadTimeout after 180.1 s", failed_after=180.1)
    radicale, ours = _server(6.0), _server(0.1)
    radicale.ops["expand_month"] = timed_out
    found = caldav_bench.verdicts(
        {10000: {"radicale": radicale, "calserver": ours}}, expected, True
    )
    assert exit_code(found) == OK
    assert "[guide missed] radicale REPORT expand one month at N=10000 answers" in render(found)
    radicale, ours = _server(6.0), _server(0.1)
    ours.ops["expand_month"] = timed_out
    found = caldav_bench.verdicts(
        {10000: {"radicale": radicale, "calserver": ours}}, expected, True
    )
    assert exit_code(found) == FAILED


def _arms(ratio: float, **counts: int) -> dict:
    return {"off": 20.0, "on": 20.0 * ratio, "ratio": ratio, "expected": 10, **counts}


def test_the_webhook_bench_fails_on_a_missed_target_or_a_lost_delivery() -> None:
    from tests.bench import webhook_bench
    from tests.bench.onoff import IN_PROCESS, WORKER_PROCESS

    hooks = {"distinct": 10, "delivered": 10, "verified": 10}
    booking = {IN_PROCESS: _arms(1.05, **hooks), WORKER_PROCESS: _arms(1.3, **hooks)}
    share = {"share": 0.05}
    rate = {"per_second": 500.0, "events": 10, "distinct": 10, "delivered": 10, "verified": 10}
    delay = {"p50_ms": 10.0, "changes": 5, "seen": 5}
    # The separate worker process is a guide; the verdict is the in-process one.
    assert exit_code(webhook_bench.verdicts(booking, share, rate, delay)) == 0
    slow = {**booking, IN_PROCESS: _arms(1.2, **hooks)}
    assert exit_code(webhook_bench.verdicts(slow, share, rate, delay)) == 1
    # "before" is a guide: it never fails the run.
    older = {**booking, "before": 10.0}
    assert exit_code(webhook_bench.verdicts(older, share, rate, delay)) == 0
    lost = webhook_bench.verdicts(booking, share, {**rate, "distinct": 9, "delivered": 9}, delay)
    assert exit_code(lost) == 1
    twice = webhook_bench.verdicts(booking, share, {**rate, "delivered": 11}, delay)
    assert exit_code(twice) == 1
    lost_booking = {**booking, WORKER_PROCESS: _arms(1.0, **{**hooks, "distinct": 9})}
    assert exit_code(webhook_bench.verdicts(lost_booking, share, rate, delay)) == 1


def test_the_notification_bench_fails_on_a_missed_ratio_or_a_missing_message() -> None:
    from argparse import Namespace

    from tests.bench import notification_bench
    from tests.bench.onoff import IN_PROCESS, WORKER_PROCESS

    claim = {"rdvs": 500_000, "find_ms": 0.5, "claim_ms": 5.0, "found": 80, "claimed": 80}
    small = {**claim, "rdvs": 5000}
    sent = {"emails": 10, "sms": 10}
    booking = {IN_PROCESS: _arms(1.05, **sent), WORKER_PROCESS: _arms(1.5, **sent)}
    args = Namespace(quick=False)
    assert exit_code(notification_bench.verdicts(claim, small, booking, args)) == 0
    slow = {**booking, IN_PROCESS: _arms(1.11, **sent)}
    assert exit_code(notification_bench.verdicts(claim, small, slow, args)) == 1
    assert exit_code(notification_bench.verdicts(claim, small, slow, Namespace(quick=True))) == 0
    unsent = {**booking, WORKER_PROCESS: _arms(1.0, emails=10, sms=9)}
    assert exit_code(notification_bench.verdicts(claim, small, unsent, args)) == 1
    extra = {**booking, IN_PROCESS: _arms(1.0, emails=11, sms=10)}
    assert exit_code(notification_bench.verdicts(claim, small, extra, args)) == 1


def test_caldav_verdicts_judge_each_peer_and_calserver_alone_at_a_larger_size() -> None:
    expected = {10000: Expected(5, 5), 100000: Expected(5, 5)}
    results = {
        10000: {"radicale": _server(6.0), "xandikos": _server(1.0), "calserver": _server(0.1)},
        100000: {"calserver": _server(0.12, rss=150_000)},
    }
    found = caldav_bench.verdicts(results, expected, gated=True)
    text = render(found)
    assert "REPORT expand one month: Xandikos/calserver >= 5 at N=10000" in text
    assert "calserver peak RSS, largest/reference N <= 2 at N=100000 vs N=10000" in text
    assert exit_code(found) == OK
    results[10000]["xandikos"] = _server(0.4)  # only 4x: the Xandikos targets miss
    assert exit_code(caldav_bench.verdicts(results, expected, gated=True)) == FAILED
    results[10000]["xandikos"] = _server(1.0)
    results[100000]["calserver"] = _server(0.2, rss=150_000)  # per-item costs doubled
    assert exit_code(caldav_bench.verdicts(results, expected, gated=True)) == FAILED
    results[100000]["calserver"] = _server(0.1, rss=250_000)  # memory 2.5x
    assert exit_code(caldav_bench.verdicts(results, expected, gated=True)) == FAILED
    # A peer's wrong answer is reported, not held against calserver.
    results[100000]["calserver"] = _server(0.1, rss=150_000)
    results[10000]["xandikos"] = _server(1.0, answer=4)
    assert exit_code(caldav_bench.verdicts(results, expected, gated=True)) == FAILED  # no ratio
    assert "xandikos REPORT expand one month at N=10000" in render(
        caldav_bench.verdicts(results, expected, gated=True)
    )
