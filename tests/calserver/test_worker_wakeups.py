"""Workers stop being woken by commits when they end: a commit after a
worker's event loop has closed must not fail in the committing thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

from calserver.app import notifier_settings, push_settings, worker_settings
from calserver.config import load_settings
from m365.secrets import new_key
from m365.worker import Pusher
from notifications.worker import Notifier
from storage import agents
from storage.database import Database
from webhooks.worker import Worker


def test_a_commit_after_the_workers_ended_wakes_only_who_still_listens(
    db: Database, tmp_path: Path
) -> None:
    config = tmp_path / "config.ini"
    config.write_text(f"[m365]\nkey = {new_key()}\n")
    settings = load_settings(config)
    push = push_settings(settings)
    assert push is not None
    for worker in (
        Worker(db, worker_settings(settings)),
        Notifier(db, notifier_settings(settings)),
        Pusher(db, push),
    ):
        stop = asyncio.Event()
        stop.set()
        asyncio.run(worker.run(stop))  # its loop is closed once this returns
    woken: list[bool] = []
    db.on_outbox_commit(lambda: woken.append(True))
    with db.transaction(write=True) as conn:  # writes an outbox event
        agents.create_organisation(conn, "Mairie", "mairie")
    assert woken == [True]
