"""Results files: small JSON in ``tests/bench/results/``, kept in the repository.

A figure quoted in the README must be traceable to the run that produced it:
the file records the command line, the commit (and whether the tree had
uncommitted changes), the date and the machine (CPUs, load average at the
start: these machines are shared).  Raw data stays out; a results file holds
sizes, medians, the repetitions behind them and the verdicts, well under
``MAX_BYTES``.  Quick runs (``--quick``) are named ``<bench>-quick-<stamp>``
and ignored by git: they check the harness, not the code.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.servers import REPO
from tests.bench.verdicts import Verdict, as_json, exit_code, render, summary

RESULTS = Path(__file__).resolve().parent / "results"
MAX_BYTES = 50_000


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def run_context(module: str, argv: list[str] | None) -> dict[str, object]:
    """What is being run, where and when: call it before the run starts.
    ``argv`` is the arguments ``main`` got (None: the command line's)."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "command": shlex.join([".venv/bin/python", "-m", module, *args]),
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", ".", ":!tests/bench/results")),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"nproc": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())},
    }


def write(bench: str, context: dict[str, object], data: dict[str, object], quick: bool) -> Path:
    """Write ``results/<bench>[-quick]-<stamp>.json`` and return its path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{bench}{'-quick' if quick else ''}-{stamp}.json"
    text = json.dumps({"bench": bench, **context, **data}, indent=1, default=str)
    if len(text.encode()) > MAX_BYTES:
        raise ValueError(f"{path.name} would be {len(text)} bytes (> {MAX_BYTES}): trim the data")
    path.write_text(text + "\n")
    return path


def report(
    bench: str,
    context: dict[str, object],
    table: str,
    found: list[Verdict],
    data: dict[str, object],
    quick: bool,
) -> int:
    """Print the table and the verdicts, write the results file; the exit code."""
    print(table + "\n\n" + render(found))
    data = {**data, "verdicts": as_json(found), "summary": summary(found), "table": table}
    print(f"\nJSON results: {write(bench, context, data, quick)}")
    return exit_code(found)
