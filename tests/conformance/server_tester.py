"""Run ``caldav-server-tester`` against a server and compare it with a baseline.

The tester probes ~100 CalDAV features and reports a support level for each.
Its JSON is *compact*: a feature whose level equals the caldav library's
default, or equals its parent's, is left out.  Comparing two reports key by key
would therefore miss regressions, so both sides are resolved through
``caldav.compatibility_hints.FeatureSet`` (the tester's own interpretation of
the format) before comparing.  ``caldav`` is a dependency of the tester.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from caldav.compatibility_hints import FeatureSet

from tests.conformance.baseline import BaselineDiff

#: Stock Radicale 3.9 (file storage) as measured by caldav-server-tester 1.7.0.
REFERENCE_JSON = Path(__file__).with_name("radicale-3.9-reference.json")

#: Support levels, best first; levels in one set rank alike.  They are caldav's
#: ``VALID_SUPPORT_LEVELS`` (a fast test keeps the two in step).
#:
#: - "quirk" and "fragile" both work with care from the client, so a move
#:   between them is not a regression.
#: - "unsupported": the server answers coherently that it does not do it.
#: - "unknown": the tester could not establish a level.  Besides "not
#:   applicable" (well-known on localhost), this is what it reports when a
#:   probe hits an exception it did not expect, which an error reply can cause.
#:   A move to it from a known level is lost evidence, so it ranks below
#:   "unsupported"; above "ungraceful" because no error is established.
#: - "ungraceful": the server answers an error (a 500, say).
#: - "broken": the server seems to do it but does it wrong, silently; worst.
SUPPORT_ORDER: tuple[frozenset[str], ...] = (
    frozenset({"full"}),
    frozenset({"quirk", "fragile"}),
    frozenset({"unsupported"}),
    frozenset({"unknown"}),
    frozenset({"ungraceful"}),
    frozenset({"broken"}),
)


def support_rank(level: str) -> int:
    """Position of ``level`` in :data:`SUPPORT_ORDER` (0 is best).

    A level the order does not know ranks below all of them, so a new caldav
    release cannot slip a new level past the gate.
    """
    for rank, levels in enumerate(SUPPORT_ORDER):
        if level in levels:
            return rank
    return len(SUPPORT_ORDER)


def run_server_tester(
    url: str, username: str, password: str, *, timeout: float = 600
) -> dict[str, Any]:
    """Run the tester CLI in a subprocess and return its parsed JSON report.

    A subprocess because the tester configures logging and global caldav state.
    It exits 0 whatever it finds, so a non-zero exit means it crashed (e.g. the
    server was unreachable or refused the credentials).  ``CALDAV_*`` variables
    are dropped so a developer's own caldav settings cannot leak in.
    """
    cmd = [
        str(Path(sys.executable).parent / "caldav-server-tester"),
        *("--caldav-url", url),
        *("--caldav-username", username),
        *("--caldav-password", password),
        *("--format", "json"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALDAV_")}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"caldav-server-tester exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def report_to_keep(report: dict[str, Any]) -> dict[str, Any]:
    """A report as kept for a baseline: without the run's time and port, which
    change every run and would only clutter the diff a reviewer reads."""
    return {key: value for key, value in report.items() if key not in ("ts", "url")}


def resolved_levels(features: dict[str, Any]) -> dict[str, str]:
    """Support level of every known server-feature, defaults filled in."""
    feature_set = FeatureSet(features)
    levels: dict[str, str] = {}
    for name in FeatureSet.FEATURES:
        if FeatureSet.find_feature(name).get("type", "server-feature") != "server-feature":
            continue  # observations, client hints etc. carry no support level
        level = feature_set.is_supported(name, str)
        if isinstance(level, str):
            levels[name] = level
    return levels


def compare_with_baseline(result: dict[str, Any], baseline: dict[str, Any]) -> BaselineDiff:
    """The features whose level ranks lower (losses) or higher (gains) in ``result``.

    Both arguments are reports from :func:`run_server_tester`.  Each line reads
    ``"feature: baseline-level -> result-level"``; a feature the result no
    longer reports at all is a loss.  Moves between equally ranked levels are
    neither.
    """
    before = resolved_levels(baseline["features"])
    after = resolved_levels(result["features"])
    diff = BaselineDiff(losses=[], gains=[])
    for name, level in sorted(before.items()):
        new = after.get(name, "absent")
        if support_rank(new) > support_rank(level):
            diff.losses.append(f"{name}: {level} -> {new}")
        elif support_rank(new) < support_rank(level):
            diff.gains.append(f"{name}: {level} -> {new}")
    return diff
