"""Kept conformance baselines: how a fresh run is held against them, and how they are rewritten.

Both gates (caldav-server-tester and the caldav functional suite) hold the
server to a baseline file kept in this directory.  A gate fails on ground lost
*and* on ground gained: a gain left unrecorded would let the same feature slip
back later without any gate noticing, so the baseline always says exactly what
the server does today.  Rewriting a baseline is deliberate: set
``CALSERVER_CONFORMANCE_REGEN=1`` for one run, review ``git diff``, commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

#: Set to ``1`` to rewrite the baselines from the run instead of comparing.
REGEN_ENV = "CALSERVER_CONFORMANCE_REGEN"
REGEN_HINT = (
    f"if the change is intended, rewrite the baselines with "
    f"`{REGEN_ENV}=1 .venv/bin/python -m pytest tests/conformance --all`, "
    f"review `git diff tests/conformance` and commit it"
)


class BaselineDiff(NamedTuple):
    """What moved between a baseline and a fresh run, one ``"name: old -> new"`` line each."""

    losses: list[str]
    gains: list[str]


def load_baseline(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def regenerating() -> bool:
    """Has the developer asked, for this run, to rewrite the baselines?"""
    return os.environ.get(REGEN_ENV, "") == "1"


def write_baseline(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as stable, reviewable JSON (sorted keys, one item a line)."""
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def gate_message(what: str, path: Path, diff: BaselineDiff) -> str:
    """The failure text of a gate: every line that moved, and how to record a wanted move.

    Empty when nothing moved.
    """
    if not diff.losses and not diff.gains:
        return ""
    parts = [f"{what} differs from {path.name}"]
    if diff.losses:
        parts.append("lost ground:\n" + "\n".join(f"  {line}" for line in diff.losses))
    if diff.gains:
        parts.append("gained ground:\n" + "\n".join(f"  {line}" for line in diff.gains))
    parts.append(REGEN_HINT)
    return "\n".join(parts)
