"""The load test's own arithmetic: server times read from the access log,
percentiles, overlapping RDVs (the double-booking check)."""

from __future__ import annotations

from tests.bench.public_load import overlaps, percentile, server_times, statuses

LOG = """\
A calserver.access: GET /prendre-rdv/{slug} 200 42.3ms
A calserver.access: GET /prendre-rdv/{slug}/motifs/{motif}/creneaux 200 48.0ms
A calserver.access: GET /prendre-rdv/{slug}/motifs/{motif}/creneaux 200 12.5ms
A calserver.access: POST /prendre-rdv/{slug}/motifs/{motif}/identite 303 110.0ms
A calserver.access: GET /api/v1/agents/{agent}/rdvs 200 5.0ms
A calserver.access: POST /prendre-rdv/{slug}/demandes/{request} 500 1.0ms
"""


def test_server_times_are_read_per_page_and_method() -> None:
    times = server_times(LOG)
    assert times == {
        "GET service": [42.3],
        "GET creneaux": [48.0, 12.5],
        "POST identite": [110.0],
        "POST code": [1.0],
    }
    assert statuses(LOG) == [200, 200, 200, 303, 500]  # the API's lines are not the pages'


def test_percentile_takes_the_value_at_or_above_the_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51.0 and percentile(values, 0.95) == 96.0
    assert percentile([7.0], 0.95) == 7.0


def test_overlaps_counts_rdvs_of_one_agent_that_overlap() -> None:
    def rdv(agent: int, start: str, end: str) -> dict:
        return {
            "agent_id": agent,
            "starts_at": f"2030-01-07T{start}",
            "ends_at": f"2030-01-07T{end}",
        }

    assert (
        overlaps([rdv(1, "09:00", "09:30"), rdv(1, "09:30", "10:00"), rdv(2, "09:00", "09:30")])
        == 0
    )
    assert overlaps([rdv(1, "09:00", "09:30"), rdv(1, "09:15", "09:45")]) == 1
