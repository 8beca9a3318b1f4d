"""Run the caldav library's functional suite (``tests/test_caldav.py``) against a server.

The suite ships only in caldav's sdist, so it is downloaded at test time and
never vendored.  It reads its server list from ``tests/caldav_test_servers.yaml``
*relative to the working directory*; an ``external`` entry there generates the
class ``TestForServer<name>``.  The entry's ``features`` tell the suite what the
server supports (which tests to skip or work around) and are checked against a
live caldav-server-tester probe by ``testCheckCompatibility``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TypedDict

from tests.conformance.baseline import BaselineDiff

CALDAV_VERSION = "3.6.0"

#: The suite's name for the server: its tests are ``TestForServer<NAME>``.  It
#: must differ from the embedded servers' names ("Radicale", "Xandikos"), or
#: the entry is silently merged into theirs.
SERVER_NAME = "calserver"

#: What stock Radicale 3.9 supports: caldav's "radicale" profile (measured on
#: 3.8) with the two things 3.9 fixed.  Gives 60 passed, 7 skipped.  Passing the
#: ``features`` map of a caldav-server-tester report for the server works too.
RADICALE_39_FEATURES: dict[str, Any] = {
    "base": "radicale",
    "save-load.mutable.if-match-wildcard": {"support": "full"},
    "search.text.case-sensitive": {"support": "full"},
}


class SuiteResult(TypedDict):
    """Test ids (``Class::test``) by outcome; ``failed`` maps each to its message."""

    passed: list[str]
    skipped: list[str]
    failed: dict[str, str]


#: Outcomes best first, for telling a loss from a gain.  A test the run did not
#: have ("not run") is lost coverage, worse than a skip.
_OUTCOME_ORDER = ("passed", "skipped", "not in baseline", "not run", "failed")


def prepare_caldav_suite(cache_dir: Path) -> Path:
    """Download and unpack caldav's sdist into ``cache_dir`` once; return the tree.

    Unpacking goes through a temporary directory and a rename, so a concurrent
    or interrupted run never leaves a half-extracted tree behind.
    """
    tree = cache_dir / f"caldav-{CALDAV_VERSION}"
    if (tree / "tests" / "test_caldav.py").is_file():
        return tree
    cache_dir.mkdir(parents=True, exist_ok=True)
    sdist = cache_dir / f"caldav-{CALDAV_VERSION}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"caldav=={CALDAV_VERSION}",
                "--dest",
                str(cache_dir),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    staging = Path(tempfile.mkdtemp(dir=cache_dir))
    try:
        with tarfile.open(sdist) as archive:
            archive.extractall(staging, filter="data")
        try:
            (staging / tree.name).rename(tree)
        except OSError:
            if not tree.is_dir():  # else another process won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tree


def run_caldav_suite(
    tree: Path,
    url: str,
    username: str,
    password: str,
    features: dict[str, Any] | str,
    *,
    timeout: float = 1800,
) -> SuiteResult:
    """Point the suite at ``url`` and run it in a subprocess; return the counts.

    ``features`` is a caldav profile name (``"radicale"``), a dict of feature
    levels (optionally ``{"base": profile, ...overrides}``), or the ``features``
    map of a caldav-server-tester report.  The config is written as JSON, which
    the suite's loader tries before YAML, so one tree serves one run at a time.
    Embedded and docker servers are switched off.  The suite's pyproject turns
    warnings into errors, so pytest-asyncio's loop-scope warning is avoided by
    setting that option.
    """
    server = {
        "type": "external",
        "enabled": True,
        "url": url,
        "username": username,
        "password": password,
        "features": features,
    }
    config = {"test-servers": {SERVER_NAME: server}}
    (tree / "tests" / "caldav_test_servers.yaml").write_text(json.dumps(config, indent=2))

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CALDAV_", "PYTHON_CALDAV_", "PYTEST_"))
    }
    env |= {"PYTHON_CALDAV_TEST_EMBEDDED": "0", "PYTHON_CALDAV_TEST_DOCKER": "0"}
    with tempfile.TemporaryDirectory() as work:
        junit = Path(work) / "junit.xml"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_caldav.py",
            "-k",
            f"TestForServer{SERVER_NAME}",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-q",
            "-rfE",
            f"--junitxml={junit}",
        ]
        proc = subprocess.run(
            cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode not in (0, 1) or not junit.is_file():  # 1 = some tests failed
            raise RuntimeError(
                f"caldav suite exited {proc.returncode}:\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return _parse_junit(junit)


def _parse_junit(path: Path) -> SuiteResult:
    """One outcome per ``<testcase>``: an error or a failure is ``failed``, then a
    skip is ``skipped``, else ``passed``."""
    result = SuiteResult(passed=[], skipped=[], failed={})
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcomes = {child.tag: child for child in case}
        problem = outcomes.get("error", outcomes.get("failure"))
        if problem is not None:
            result["failed"][name] = (problem.get("message") or problem.tag).splitlines()[0][:200]
        elif "skipped" in outcomes:
            result["skipped"].append(name)
        else:
            result["passed"].append(name)
    result["passed"].sort()
    result["skipped"].sort()
    return result


def suite_baseline(result: SuiteResult) -> dict[str, Any]:
    """The baseline file's content for a clean run: the sorted passed and skipped ids."""
    if result["failed"]:
        raise ValueError(f"a baseline cannot record failing tests: {sorted(result['failed'])}")
    return {
        "caldav_version": CALDAV_VERSION,
        "passed": result["passed"],
        "skipped": result["skipped"],
    }


def compare_suite_with_baseline(result: SuiteResult, baseline: dict[str, Any]) -> BaselineDiff:
    """Every test id whose outcome differs from the baseline's.

    A failure is always a loss, as is a baseline-passed test that did not pass
    and a baseline test the run no longer has; a skip turning into a pass and a
    test the baseline does not know are gains (still to be recorded).
    """
    before = dict.fromkeys(baseline["passed"], "passed") | dict.fromkeys(
        baseline["skipped"], "skipped"
    )
    after = (
        dict.fromkeys(result["passed"], "passed")
        | dict.fromkeys(result["skipped"], "skipped")
        | dict.fromkeys(result["failed"], "failed")
    )
    diff = BaselineDiff(losses=[], gains=[])
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, "not in baseline"), after.get(name, "not run")
        if old == new:
            continue
        line = f"{name}: {old} -> {new}"
        if new == "failed":
            line += f" ({result['failed'][name]})"
        worse = _OUTCOME_ORDER.index(new) > _OUTCOME_ORDER.index(old)
        (diff.losses if worse else diff.gains).append(line)
    return diff
