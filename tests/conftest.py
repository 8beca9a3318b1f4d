"""Shared fixtures: real databases (a SQLite file, a fresh PostgreSQL database)
and real servers (the ``calserver`` command on a free loopback port).

Slow suites (marked ``slow``) run with ``--all`` or when ``CI=true``; ``-m "not
slow"`` keeps the fast suite alone even then (.ci/run's second, clock-shifted
pass).  On CI an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from storage.database import Database

PG_ADMIN_DSN = os.environ.get("CALSERVER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ON_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_PASSWORD = "admin-secret-1"
PLAIN_CALENDAR = "admin/agenda/"
CALSERVER = Path(sys.executable).with_name("calserver")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--all", action="store_true", help="also run the slow suites")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--all") or ON_CI:
        return
    kept = [i for i in items if "slow" not in i.keywords]
    deselected = [i for i in items if "slow" in i.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def _pg_available() -> bool:
    try:
        psycopg.connect(PG_ADMIN_DSN, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    available = _pg_available()
    if not available and ON_CI:
        pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_DSN} (required on CI)")
    return available


@contextmanager
def _pg_database(pg_available: bool, template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of ``template`` when given), dropped afterwards."""
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable (it is required on CI)")
    name = f"calserver_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Migrated templates: most tests start from a database at the newest schema,
# copied from one migrated once per test process, so that each server start
# does not run every migration again (the migrations have their own tests,
# which start from an empty database: ``empty_database_url``).  The server
# still does its first-start work (first organisation and admin) each time.


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template(pg_available: bool) -> Iterator[str]:
    with _pg_database(pg_available) as url:
        database = Database(url)
        database.migrate()
        database.dispose()
        yield url.rsplit("/", 1)[1]


@contextmanager
def _migrated_database(kind: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        path = directory / "calserver.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("_pg_template")
    with _pg_database(request.getfixturevalue("pg_available"), template) as url:
        yield url


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """An empty PostgreSQL database."""
    with _pg_database(pg_available) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind (for the migrations' own tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'calserver.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind at the newest schema, with no records yet."""
    with _migrated_database(request.param, request, tmp_path) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``calserver serve`` process."""

    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def dav(self) -> str:
        return self.url + "/dav/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_cli(
    database_url: str, *args: str, stdin: str | None = None, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    command = [str(CALSERVER)] + (["--config", str(config)] if config else []) + list(args)
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
    )


def start_server(
    database_url: str,
    workdir: Path,
    *,
    extra_config: str = "",
    env: dict[str, str] | None = None,
    plain_calendar: bool = True,
    command: list[str] | None = None,
) -> Server:
    """``command``: what runs in place of the ``calserver`` executable (the
    config and ``serve`` arguments are added)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"config-{port}.ini"
    config.write_text(f"[server]\nhost = 127.0.0.1\nport = {port}\n{extra_config}")
    log_path = workdir / f"server-{port}.log"
    full_env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*(command or [str(CALSERVER)]), "--config", str(config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=workdir,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, process, log_path)
    try:
        _wait_until_healthy(server, plain_calendar)
    except BaseException:
        server.stop()  # whatever interrupted the start, leave no server behind
        raise
    return server


def _wait_until_healthy(server: Server, plain_calendar: bool) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"calserver exited early:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                if plain_calendar:
                    _ensure_plain_calendar(server)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"calserver did not become healthy:\n{server.log()}")


def new_calendar(server: Server) -> str:
    """A new, empty ordinary calendar of admin's, as ``admin/t-<hex>/``: what
    a test on a shared server stores or counts there is its own."""
    path = f"admin/t-{secrets.token_hex(6)}/"
    answer = httpx.request("MKCALENDAR", server.dav + path, auth=("admin", ADMIN_PASSWORD))
    assert answer.status_code == 201, answer.text
    return path


def _ensure_plain_calendar(server: Server) -> None:
    """Give admin an ordinary calendar (PLAIN_CALENDAR): protocol tests that are
    not about booking write there, where no booking rule applies."""
    url, auth = server.dav + PLAIN_CALENDAR, ("admin", ADMIN_PASSWORD)
    if httpx.request("PROPFIND", url, auth=auth, headers={"Depth": "0"}).status_code == 207:
        return
    answer = httpx.request("MKCALENDAR", url, auth=auth, timeout=10)
    assert answer.status_code == 201, answer.text


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(database_url, tmp_path / "server")
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database per database kind for a whole module (see ``module_server``;
    a module that needs its own configuration starts its server on this)."""
    with _migrated_database(request.param, request, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def module_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per database for a whole module, for suites whose tests keep
    out of each other's way (their own agents, days or records): a server
    start costs more than most of these tests."""
    srv = start_server(module_database_url, tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()
