"""The operator's commands, run as a person would run them."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import datetime
from pathlib import Path

import httpx
from alembic import command as alembic
from sqlalchemy import insert

from storage import agents
from storage.database import Database
from storage.schema import organisations, usagers
from tests.conftest import CALSERVER, run_cli, start_server
from tests.ics import event


def test_first_start_generates_and_prints_admin_password_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {k: v for k, v in os.environ.items() if k != "CALSERVER_ADMIN_PASSWORD"}
    env["CALSERVER_DATABASE_URL"] = url

    def migrate() -> str:
        done = subprocess.run(
            [str(CALSERVER), "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    first = migrate()
    assert "First start: log in as 'admin' with password" in first
    password = first.split("with password '", 1)[1].split("'", 1)[0]
    assert "password" not in migrate()
    server = start_server(
        url, tmp_path / "srv", env={"CALSERVER_ADMIN_PASSWORD": ""}, plain_calendar=False
    )
    try:
        answer = httpx.request("PROPFIND", server.dav + "admin/", auth=("admin", password))
        assert answer.status_code == 207
    finally:
        server.stop()


def test_add_agent_and_reset_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    created = run_cli(
        url,
        "add-agent",
        "alice",
        "--role",
        "basic",
        "--service",
        "PMI",
        "--service",
        "Social",
        "--name",
        "Alice Martin",
        "--password-stdin",
        stdin="alice-password\n",
    )
    assert created.returncode == 0, created.stderr
    duplicate = run_cli(url, "add-agent", "alice", "--password-stdin", stdin="whatever12\n")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr
    bad_login = run_cli(url, "add-agent", "Alice Martin")
    assert bad_login.returncode == 1 and "login" in bad_login.stderr
    reset = run_cli(url, "set-password", "alice")
    assert reset.returncode == 0
    new_password = reset.stdout.split("password: ", 1)[1].strip()
    server = start_server(url, tmp_path / "srv")
    try:
        assert (
            httpx.request(
                "PROPFIND", server.dav + "alice/", auth=("alice", "alice-password")
            ).status_code
            == 401
        )
        assert (
            httpx.request(
                "PROPFIND", server.dav + "alice/", auth=("alice", new_password)
            ).status_code
            == 207
        )
    finally:
        server.stop()


def test_import_loads_a_folder_or_refuses_it_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'imp.db'}"
    folder = tmp_path / "ics"
    folder.mkdir()
    for n in range(3):
        (folder / f"e{n}.ics").write_text(event(f"e{n}", datetime(2027, 1, 4 + n, 9, 0)))
    assert run_cli(url, "import", "admin/agenda", str(folder)).returncode == 0
    (folder / "broken.ics").write_text("BEGIN:VCALENDAR\r\nnot really\r\n")
    refused = run_cli(url, "import", "admin/plages", str(folder))
    assert refused.returncode == 1 and "broken.ics" in refused.stderr
    server = start_server(url, tmp_path / "srv")
    try:
        from tests.conftest import ADMIN_PASSWORD

        auth = ("admin", ADMIN_PASSWORD)
        assert httpx.get(server.dav + "admin/agenda/e1.ics", auth=auth).status_code == 200
        listing = httpx.request(
            "PROPFIND", server.dav + "admin/plages/", auth=auth, headers={"Depth": "1"}
        )
        assert listing.text.count("<response>") == 1  # the collection alone
    finally:
        server.stop()


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        url = f"sqlite:///{tmp_path / 'busy.db'}"
        done = run_cli(url, "serve", "--port", str(port))
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"calserver: cannot listen on http://127.0.0.1:{port}: the port is in use"
    )
    assert "calserver is serving" not in done.stdout


def test_operator_commands_without_configuration_create_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CALSERVER_DATABASE_URL"}
    for command in (["migrate"], ["set-password", "admin"]):
        done = subprocess.run(
            [str(CALSERVER), *command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "no configuration" in done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_migrate_refusing_usagers_sharing_an_email_says_why_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared-email.db'}"
    db = Database(url)
    alembic.upgrade(db.alembic_config(), "0005")
    with db.transaction(write=True) as conn:
        org = conn.execute(
            insert(organisations).values(name="O", slug="o").returning(organisations.c.id)
        ).scalar_one()
        for email in ("anne@example.fr", "Anne@example.fr"):
            conn.execute(
                insert(usagers).values(
                    organisation_id=org, first_name="A", last_name="B", email=email, created_at=0
                )
            )
    db.dispose()
    done = run_cli(url, "migrate")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("calserver: cannot make usagers' emails unique")
    assert "ids): 1, 2." in done.stderr


def test_operator_flag_is_set_and_removed_by_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'operators.db'}"
    assert (
        run_cli(url, "add-agent", "bob", "--password-stdin", stdin="bob-password\n").returncode == 0
    )

    def operator(login: str) -> bool:
        db = Database(url)
        try:
            with db.transaction(write=False) as conn:
                return agents.is_operator(conn, login)
        finally:
            db.dispose()

    # The first admin of a new installation operates the server; others do not.
    assert operator("admin") and not operator("bob")
    done = run_cli(url, "operator", "bob")
    assert done.returncode == 0 and "'bob' is an operator" in done.stdout
    assert operator("bob")
    assert run_cli(url, "operator", "bob", "--off").returncode == 0
    assert not operator("bob")
    unknown = run_cli(url, "operator", "nobody")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip() == "calserver: no agent with login 'nobody' that can log in"
