"""Each pooled SQLite connection keeps a small page cache of its own."""

from __future__ import annotations

from pathlib import Path

from storage.database import SQLITE_CACHE_KIB, Database


def test_connections_have_the_small_page_cache(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cal.db'}")
    with db.connection() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    db.dispose()
