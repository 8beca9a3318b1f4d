"""Verdicts of a benchmark run: targets met or missed, answers right or wrong.

A benchmark is only useful if it fails loudly: a missed target or a wrong
answer (a fast server that returns the wrong slots proves nothing) must make
the command exit non-zero, so that a script or a reviewer cannot mistake it for
a pass.  This module is plain data in, text and an exit code out; each bench
keeps its targets as named constants and builds its verdicts with it.

Exit codes: 0 every gated target met and every answer right, 1 a target missed
or an answer wrong, 2 the run could not be set up (``SETUP_ERROR``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

OK, FAILED, SETUP_ERROR = 0, 1, 2


class Kind(StrEnum):
    TARGET = "target"  # gated: a miss fails the run
    GUIDE = "guide"  # reported only (absolute times on a shared machine, quick runs)
    CHECK = "check"  # an answer compared with what the workload implies: always gated


@dataclass(frozen=True)
class Target:
    """A goal on a measured value: ``value <= limit`` (``at_most``) or ``>=``."""

    name: str
    limit: float
    at_most: bool = True
    kind: Kind = Kind.TARGET

    @property
    def rule(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:g}"

    def judge(self, value: float | None, gated: bool = True, where: str = "") -> Verdict:
        """The verdict for ``value`` (measured ``where``); None (not measured:
        a failure) misses.  ``gated=False`` makes a target a guide (quick runs)."""
        met = value is not None and (value <= self.limit if self.at_most else value >= self.limit)
        kind = self.kind if gated else Kind.GUIDE
        at = f" at {where}" if where else ""
        return Verdict(f"{self.name} {self.rule}{at}", kind, met, value)


@dataclass(frozen=True)
class Verdict:
    what: str
    kind: Kind
    met: bool
    value: float | str | None = None

    @property
    def fails_run(self) -> bool:
        return not self.met and self.kind is not Kind.GUIDE


def check(what: str, expected: object, found: object) -> Verdict:
    """An answer check: ``found`` must equal ``expected`` (counts, sets...)."""
    if expected == found:
        return Verdict(what, Kind.CHECK, True, _short(found))
    return Verdict(what, Kind.CHECK, False, f"expected {_short(expected)}, got {_short(found)}")


def failed(what: str, why: str, reference: bool = False) -> Verdict:
    """An answer check that could not even be made (error status, timeout).
    On the ``reference`` server we compare against, it is reported only."""
    return Verdict(f"{what} answers", Kind.GUIDE if reference else Kind.CHECK, False, why)


def _short(value: object) -> str:
    """A count for a big collection (thousands of slots), the value otherwise."""
    if isinstance(value, set | frozenset | list | tuple | dict) and len(value) > 3:
        return f"{len(value)} items"
    return str(sorted(value, key=repr) if isinstance(value, set | frozenset) else value)


def _label(v: Verdict) -> str:
    if v.kind is Kind.CHECK:
        return "ok" if v.met else "WRONG"
    if v.kind is Kind.GUIDE:
        return "guide met" if v.met else "guide missed"
    return "met" if v.met else "MISSED"


def _shown(value: float | str | None) -> str:
    if value is None:
        return "not measured"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def summary(verdicts: Sequence[Verdict]) -> str:
    """The last line of a run: "N targets met, M missed" and the answer checks."""
    targets = [v for v in verdicts if v.kind is Kind.TARGET]
    checks = [v for v in verdicts if v.kind is Kind.CHECK]
    guides = sum(v.kind is Kind.GUIDE for v in verdicts)
    met = sum(v.met for v in targets)
    wrong = sum(not v.met for v in checks)
    return (
        f"{met} targets met, {len(targets) - met} missed;"
        f" {len(checks) - wrong} answer checks passed, {wrong} failed"
        + (f"; {guides} guides (not gated)" if guides else "")
    )


def render(verdicts: Sequence[Verdict]) -> str:
    """One line per verdict, targets first, then the summary line."""
    order = {Kind.TARGET: 0, Kind.GUIDE: 1, Kind.CHECK: 2}
    lines = ["Targets and answer checks"]
    for v in sorted(verdicts, key=lambda v: order[v.kind]):
        lines.append(f"  [{_label(v):12}] {v.what}: {_shown(v.value)}")
    lines.append(summary(verdicts))
    return "\n".join(lines)


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """1 when a gated target is missed or an answer is wrong, else 0."""
    return FAILED if any(v.fails_run for v in verdicts) else OK


def as_json(verdicts: Iterable[Verdict]) -> list[dict[str, object]]:
    return [{**asdict(v), "kind": str(v.kind)} for v in verdicts]


class SetupError(RuntimeError):
    """The run could not be set up (a server that does not start, a failed load)."""


def guarded(run: Callable[[], int]) -> int:
    """``run()``, or ``SETUP_ERROR`` with the reason when the setup fails."""
    try:
        return run()
    except SetupError as e:
        print(f"setup error: {e}")
        return SETUP_ERROR
