"""The créneaux engine: which slots a motif offers, on plain data.

1. plage occurrences offering the motif (at the lieu for ``public_office``);
2. minus the agent's busy time (holidays, absences, RDVs not cancelled,
   blocking events) gives free intervals;
3. each free interval is cut into slots of the motif's duration from its
   start; an interval already begun (before the cutoff: now, plus the minimum
   delay for public booking) starts at the next 5-minute step from its start;
4. public booking keeps slots up to now + the maximum delay;
5. one slot per (start, lieu), its agent taken from the first-registered plage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking.model import Busy, Creneau, Interval, Motif, PlageOccurrence

STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class Search:
    """What is asked: a motif over [start, end), optionally at a lieu or for
    some agents; ``public`` applies the motif's booking delays."""

    motif: Motif
    start: datetime
    end: datetime
    now: datetime
    public: bool = False
    lieu_id: int | None = None
    agent_ids: frozenset[int] | None = None

    @property
    def cutoff(self) -> datetime:
        if self.public:
            return self.now + timedelta(minutes=self.motif.min_delay_minutes)
        return self.now

    @property
    def latest_start(self) -> datetime | None:
        if self.public:
            return self.now + timedelta(minutes=self.motif.max_delay_minutes)
        return None


def subtract(interval: Interval, busy: Sequence[Interval]) -> list[Interval]:
    """The parts of ``interval`` that no busy interval covers (busy sorted by start)."""
    free: list[Interval] = []
    cursor = interval.start
    for b in busy:
        if b.end <= cursor:
            continue
        if b.start >= interval.end:
            break
        if b.start > cursor:
            free.append(Interval(cursor, b.start))
        cursor = max(cursor, b.end)
        if cursor >= interval.end:
            break
    if cursor < interval.end:
        free.append(Interval(cursor, interval.end))
    return free


def slot_starts(free: Interval, duration: timedelta, cutoff: datetime) -> list[datetime]:
    """Slot starts of one free interval: a grid from its start, the first slot
    of an interval already begun rounded up to the next 5 minutes."""
    first = free.start
    if first < cutoff:
        steps = math.ceil((cutoff - first) / STEP)
        first = free.start + steps * STEP
    starts = []
    while first + duration <= free.end:
        starts.append(first)
        first += duration
    return starts


def _busy_by_agent(busy: Iterable[Busy], holidays: Sequence[Interval]) -> dict[int, list[Interval]]:
    by_agent: dict[int, list[Interval]] = {}
    for b in busy:
        by_agent.setdefault(b.agent_id, []).append(Interval(b.start, b.end))
    for intervals in by_agent.values():
        intervals.extend(holidays)
        intervals.sort(key=lambda i: i.start)
    return by_agent


def find_creneaux(
    search: Search,
    plages: Iterable[PlageOccurrence],
    busy: Iterable[Busy],
    holidays: Sequence[Interval] = (),
) -> list[Creneau]:
    """Every slot the motif offers in the search window, one per (start, lieu)."""
    motif = search.motif
    duration = timedelta(minutes=motif.duration_minutes)
    busy_of = _busy_by_agent(busy, holidays)
    no_busy = sorted(holidays, key=lambda i: i.start)
    latest = search.latest_start
    found: dict[tuple[datetime, int | None], list[tuple[int, int]]] = {}
    for plage in plages:
        if search.agent_ids is not None and plage.agent_id not in search.agent_ids:
            continue
        if not plage.offers(motif, search.lieu_id):
            continue
        occurrence = Interval(plage.start, plage.end)
        for free in subtract(occurrence, busy_of.get(plage.agent_id, no_busy)):
            for start in slot_starts(free, duration, search.cutoff):
                if start < search.start or start >= search.end:
                    continue
                if latest is not None and start > latest:
                    continue
                found.setdefault((start, plage.lieu_id), []).append((plage.order, plage.agent_id))
    result = []
    for (start, lieu_id), takers in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        agents = tuple(dict.fromkeys(agent for _, agent in sorted(takers)))
        result.append(Creneau(start, start + duration, agents[0], lieu_id, agents))
    return result
