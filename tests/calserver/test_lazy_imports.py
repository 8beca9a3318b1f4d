"""A server that is only asked CalDAV never loads the heavy libraries of the
features it was not asked for (Microsoft 365's msal and requests,
cryptography, openpyxl for XLSX exports): about 40 MiB of a process that
otherwise holds about 80.

The real ``calserver serve`` runs in a child process whose prelude answers
SIGUSR1 by writing which of those modules are loaded; the test drives it
over HTTP with a CalDAV client, then asks.  An XLSX export afterwards shows
the probe sees a module imported late (openpyxl appears).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import caldav
import httpx

from tests.conftest import ADMIN_PASSWORD, PLAIN_CALENDAR, start_server

HEAVY = ("msal", "requests", "cryptography", "openpyxl")
PRELUDE = """
import json, signal, sys
def report(*_):
    loaded = sorted(m for m in {heavy!r} if m in sys.modules)
    with open({out!r}, "w") as f:
        json.dump(loaded, f)
signal.signal(signal.SIGUSR1, report)
from calserver.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _loaded(process: subprocess.Popen[bytes], out: Path) -> list[str]:
    out.unlink(missing_ok=True)
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if out.exists() and out.read_text():
            return json.loads(out.read_text())
        time.sleep(0.05)
    raise AssertionError("the server did not report its modules")


def test_caldav_traffic_loads_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    out = tmp_path / "loaded.json"
    prelude = PRELUDE.format(heavy=HEAVY, out=str(out))
    server = start_server(
        f"sqlite:///{tmp_path / 'lazy.sqlite'}",
        tmp_path,
        command=[sys.executable, "-c", prelude],
    )
    try:
        client = caldav.DAVClient(url=server.dav, username="admin", password=ADMIN_PASSWORD)
        calendar = client.calendar(url=server.dav + PLAIN_CALENDAR)
        start = datetime.now().replace(microsecond=0) + timedelta(days=3)
        calendar.save_event(
            dtstart=start,
            dtend=start + timedelta(hours=1),
            summary="Réunion",
            rrule={"FREQ": "WEEKLY"},
        )
        assert len(calendar.search(start=start, end=start + timedelta(days=30), expand=True)) >= 4
        assert len(calendar.events()) == 1
        calendar.objects_by_sync_token(load_objects=False)
        assert _loaded(server.process, out) == []

        export = httpx.get(
            server.url + "/api/v1/organisations/1/rdvs.xlsx",
            params={
                "from": start.date().isoformat(),
                "to": (start + timedelta(days=7)).date().isoformat(),
            },
            auth=("admin", ADMIN_PASSWORD),
            timeout=30,
        )
        assert export.status_code == 200, export.text
        assert _loaded(server.process, out) == ["openpyxl"]
    finally:
        server.stop()
