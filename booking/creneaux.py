"""The créneaux engine: which slots a motif offers, on plain data.

1. plage occurrences offering the motif (at the lieu for ``public_office``;
   for public booking, only plages that name the motif);
2. minus the agent's busy time (holidays, absences, RDVs not cancelled,
   blocking events) gives free intervals;
3. each free interval is cut into slots of the motif's duration from its
   start; an interval already begun starts at the next 5-minute step from its
   start after now;
4. public booking keeps the slots from now + the minimum delay to now + the
   maximum delay;
5. one slot per (start, lieu), its agent taken from the first-registered plage.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from booking.model import Busy, Creneau, Interval, Motif, PlageOccurrence
from booking.model import ts as _ts

STEP = 5 * 60  # seconds
# The engine computes on POSIX seconds (a search walks thousands of candidate
# slots); datetimes come in and go out.
Span = tuple[int, int]


@dataclass(frozen=True)
class Search:
    """What is asked: a motif over [start, end), optionally at a lieu or for
    some agents; ``public`` applies the motif's booking delays and keeps only
    the plages that name the motif."""

    motif: Motif
    start: datetime
    end: datetime
    now: datetime
    public: bool = False
    lieu_id: int | None = None
    agent_ids: frozenset[int] | None = None

    @property
    def earliest_start(self) -> datetime:
        if self.public:
            return self.now + timedelta(minutes=self.motif.min_delay_minutes)
        return self.now

    @property
    def latest_start(self) -> datetime | None:
        if self.public:
            return self.now + timedelta(minutes=self.motif.max_delay_minutes)
        return None


def merge(spans: Iterable[Span]) -> list[Span]:
    """Busy spans sorted and merged, so that their ends are sorted too."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(interval: Span, busy: list[Span], busy_ends: list[int]) -> list[Span]:
    """The parts of ``interval`` no busy span covers (``busy`` merged, with
    ``busy_ends`` its ends: the first that can matter is found by bisection)."""
    start, end = interval
    free: list[Span] = []
    cursor = start
    for i in range(bisect.bisect_right(busy_ends, start), len(busy)):
        b_start, b_end = busy[i]
        if b_start >= end:
            break
        if b_start > cursor:
            free.append((cursor, b_start))
        cursor = max(cursor, b_end)
        if cursor >= end:
            return free
    if cursor < end:
        free.append((cursor, end))
    return free


def slot_starts(free: Span, duration: int, cutoff: int) -> range:
    """Slot starts of one free span: a grid from its start, the first slot of a
    span already begun rounded up to the next 5 minutes from its start."""
    first, end = free
    if first < cutoff:
        first += -(-(cutoff - first) // STEP) * STEP  # ceiling division
    return range(first, end - duration + 1, duration)


def find_creneaux(
    search: Search,
    plages: Iterable[PlageOccurrence],
    busy: Iterable[Busy],
    holidays: Sequence[Interval] = (),
) -> list[Creneau]:
    """Every slot the motif offers in the search window, one per (start, lieu)."""
    motif = search.motif
    duration = motif.duration_minutes * 60
    holiday_spans = [(_ts(h.start), _ts(h.end)) for h in holidays]
    spans: dict[int, list[Span]] = {}
    for b in busy:
        spans.setdefault(b.agent_id, []).append((b.start, b.end))
    busy_of = {agent: merge(s + holiday_spans) for agent, s in spans.items()}
    no_busy = merge(holiday_spans)
    ends_of = {agent: [e for _, e in merged] for agent, merged in busy_of.items()}
    no_ends = [e for _, e in no_busy]
    first, last = _ts(search.start), _ts(search.end)
    latest = search.latest_start
    if latest is not None:
        last = min(last, _ts(latest) + 1)
    # The grid rounds against now (step 3); the minimum delay then filters (step 4).
    cutoff = _ts(search.now)
    first = max(first, _ts(search.earliest_start))
    found: dict[tuple[int, int | None], list[tuple[int, int]]] = {}
    for plage in plages:
        if search.agent_ids is not None and plage.agent_id not in search.agent_ids:
            continue
        if not plage.offers(motif, search.lieu_id, search.public):
            continue
        agent = plage.agent_id
        taker = (plage.order, agent)
        occurrence = (plage.start, plage.end)
        for free in subtract(occurrence, busy_of.get(agent, no_busy), ends_of.get(agent, no_ends)):
            for start in slot_starts(free, duration, cutoff):
                if first <= start < last:
                    found.setdefault((start, plage.lieu_id), []).append(taker)
    result = []
    for (start, lieu_id), takers in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        agents = tuple(dict.fromkeys(agent for _, agent in sorted(takers)))
        begin = datetime.fromtimestamp(start, UTC)
        result.append(
            Creneau(begin, begin + timedelta(seconds=duration), agents[0], lieu_id, agents)
        )
    return result
