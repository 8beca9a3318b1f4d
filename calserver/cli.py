"""The ``calserver`` command: serve, and the operator's non-interactive tasks."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from aiohttp import web

from calserver.app import create_app, notifier_settings, push_settings, worker_settings
from calserver.bootstrap import prepare_database
from calserver.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from calserver.memory import allocator
from m365.secrets import new_key
from m365.worker import Pusher, reconcile_once
from notifications.worker import Notifier
from plugins import log_redaction
from plugins.importer import ImportRefused, import_folder
from storage import agents
from storage.database import Database, MigrationRefused
from webhooks.worker import Worker


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calserver", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=None, help="configuration file (default: ./config.ini)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="listen address (overrides [server] host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [server] port)")

    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser(
        "worker",
        help="deliver webhooks, send notifications and push to Microsoft 365 (alone; several "
        "may share a PostgreSQL database)",
    )
    commands.add_parser(
        "m365-reconcile", help="repair the Outlook calendars of every connected agent now"
    )
    commands.add_parser("m365-key", help="print a new key for [m365] key")

    add = commands.add_parser("add-agent", help="create an agent with its agendas")
    add.add_argument("login")
    add.add_argument("--role", choices=agents.ROLES, default="basic")
    add.add_argument(
        "--service",
        action="append",
        default=[],
        help="service name (repeat for several; created if missing)",
    )
    add.add_argument("--organisation", help="organisation slug (default: the first one)")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--email")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else one is generated)",
    )

    reset = commands.add_parser("set-password", help="set or reset an agent's password")
    reset.add_argument("login")
    reset.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else one is generated)",
    )

    operator = commands.add_parser(
        "operator",
        help="make an agent an operator of the server (creates organisations, an admin of "
        "every organisation through the API), or no longer one with --off",
    )
    operator.add_argument("login")
    operator.add_argument("--off", action="store_true", help="no longer an operator")

    load = commands.add_parser(
        "import", help="load a folder of .ics files (one object each) into an agenda"
    )
    load.add_argument("collection", help="agenda path, e.g. alice/rdv")
    load.add_argument("folder", type=Path)
    return parser


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password to set, and whether it was generated (and so must be shown)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


def _prepare(settings: Settings, db: Database) -> None:
    generated = prepare_database(db, settings)
    if generated:
        print(
            f"First start: log in as {settings.admin_login!r} with password "
            f"{generated!r} (shown only this once; change it with "
            f"'calserver set-password {settings.admin_login}')."
        )


def _serve(settings: Settings, db: Database) -> None:
    allocator.tune()
    app = create_app(settings, db)
    url = f"http://{settings.host}:{settings.port}"

    def announce(_aiohttp_banner: str) -> None:
        # Called once the socket is bound: the line means the server answers.
        print(f"calserver is serving {url}/  (CalDAV: {url}/dav/, health: {url}/healthz)")
        if not settings.public_url:
            logging.getLogger("calserver").warning(
                "[server] public_url is not set: feed links point at %s", settings.base_url
            )
        sys.stdout.flush()

    try:
        web.run_app(app, host=settings.host, port=settings.port, print=announce, access_log=None)
    except OSError as e:
        reason = "the port is in use" if e.errno == errno.EADDRINUSE else e.strerror
        raise ServeError(f"cannot listen on {url}: {reason}") from None


def _work(settings: Settings, db: Database) -> None:
    async def deliver() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print("calserver worker is delivering webhooks and sending notifications")
        worker = Worker(db, worker_settings(settings))
        push = push_settings(settings)
        runs = [worker.run(stop), Notifier(db, notifier_settings(settings)).run(stop)]
        if push is not None:
            print("calserver worker is pushing RDVs to Microsoft 365")
            runs.append(Pusher(db, push).run(stop))
        sys.stdout.flush()
        await asyncio.gather(*runs)
        # For the operator (and the tests): what this process delivered.
        print(f"calserver worker stopped; it delivered {worker.delivered} webhook requests")
        sys.stdout.flush()

    asyncio.run(deliver())


def _reconcile(settings: Settings, db: Database) -> None:
    push = push_settings(settings)
    if push is None:
        raise ServeError("[m365] key is not set: nothing is pushed to Microsoft 365")
    for report in asyncio.run(reconcile_once(db, push)):
        print(
            f"agent {report['agent_id']}: {report['events']} events of ours, "
            f"{report['deleted']} deleted, {report['missing']} recreated"
            + (f", failed: {report['error']}" if "error" in report else "")
        )


class ServeError(Exception):
    """The server could not start; the message says why in one line."""


def _configured(args: argparse.Namespace) -> bool:
    """Whether the operator named a database: a config file or the environment.
    Operator commands refuse to run otherwise, rather than create an empty
    database in whatever folder they were started from."""
    return bool(args.config or DEFAULT_CONFIG.exists() or os.environ.get("CALSERVER_DATABASE_URL"))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(f"calserver: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_redaction.install()
    # Radicale and Alembic narrate every request and migration step at INFO.
    for noisy in ("radicale", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "m365-key":
        print(new_key())
        return 0
    if args.command != "serve" and not _configured(args):
        print(
            f"calserver: no configuration: {DEFAULT_CONFIG} is not in {Path.cwd()} and "
            "CALSERVER_DATABASE_URL is not set (name a file with --config)",
            file=sys.stderr,
        )
        return 2
    if args.command == "serve":
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
        settings = Settings(**{**settings.__dict__, **overrides})
    # PostgreSQL connections for every thread that may hold one at once: the
    # CalDAV and API pools (``threads`` each), the pages' writes (half as
    # many), the searches, the workers (pool_size more may overflow).
    db = Database(settings.database_url, pool_size=max(10, settings.threads + 8))
    try:
        _prepare(settings, db)
        if args.command == "serve":
            _serve(settings, db)
        elif args.command == "worker":
            _work(settings, db)
        elif args.command == "m365-reconcile":
            _reconcile(settings, db)
        elif args.command == "migrate":
            print("database schema is up to date")
        elif args.command == "add-agent":
            password, generated = (
                (None, False) if args.role == "intervenant" else _password(args.password_stdin)
            )
            with db.transaction(write=True) as conn:
                slug = args.organisation or agents.first_organisation_slug(conn)
                agents.create_agent(
                    conn,
                    args.login,
                    organisation=agents.organisation_id(conn, slug or ""),
                    role=args.role,
                    password=password,
                    services_names=tuple(args.service),
                    display_name=args.name,
                    email=args.email,
                )
            print(f"agent {args.login!r} created ({args.role})")
            if generated:
                print(f"password: {password}")
        elif args.command == "set-password":
            password, generated = _password(args.password_stdin)
            with db.transaction(write=True) as conn:
                agents.set_password(conn, args.login, password)
            print(f"password of {args.login!r} changed")
            if generated:
                print(f"password: {password}")
        elif args.command == "operator":
            with db.transaction(write=True) as conn:
                agents.set_operator(conn, args.login, not args.off)
            print(f"{args.login!r} is {'no longer ' if args.off else ''}an operator")
        elif args.command == "import":
            count = import_folder(db, args.collection.strip("/"), args.folder)
            print(f"{count} objects imported into {args.collection}")
    except (agents.AgentError, ImportRefused, ServeError, MigrationRefused) as e:
        print(f"calserver: {e}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0
