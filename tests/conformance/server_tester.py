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

#: Stock Radicale 3.9 (file storage) as measured by caldav-server-tester 1.7.0.
REFERENCE_JSON = Path(__file__).with_name("radicale-3.9-reference.json")

#: Higher is worse.  The level names are caldav's ``VALID_SUPPORT_LEVELS``.
#: "unsupported", "ungraceful" (an error reply) and "unknown" (could not be
#: established) all mean "a client cannot rely on it", so moving between them
#: is not a regression; "broken" (silently does the wrong thing) is worst.
SUPPORT_RANK: dict[str, int] = {
    "full": 0,
    "quirk": 1,
    "fragile": 2,
    "unsupported": 3,
    "ungraceful": 3,
    "unknown": 3,
    "broken": 4,
}


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


def compare_with_baseline(result: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """List the features that are worse in ``result`` than in ``baseline``.

    Both arguments are reports from :func:`run_server_tester`.  Each entry
    reads ``"feature: baseline-level -> result-level"``.  A level this module
    does not know ranks as worst, so a new caldav release cannot hide one.
    """
    worst = max(SUPPORT_RANK.values()) + 1
    before = resolved_levels(baseline["features"])
    after = resolved_levels(result["features"])
    return [
        f"{name}: {level} -> {after[name]}"
        for name, level in sorted(before.items())
        if name in after and SUPPORT_RANK.get(after[name], worst) > SUPPORT_RANK.get(level, worst)
    ]
