"""Start, load, measure and stop the servers under comparison.

All get the same objects the same way: everything but the timed PUTs is
loaded directly (Radicale: its own file layout, written before it starts;
Xandikos: its git-backed collection, committed before it starts; calserver:
its ``import`` command), because filling stock Radicale with 10,000 events
over HTTP takes about 45 minutes.  Each server runs in its own process so
that its peak resident memory (VmHWM) and its CPU time can be read from /proc.

Xandikos is not a dependency of calserver: it is installed from PyPI into the
bench's own virtual environment (``.cache/xandikos-venv``, git-ignored) the
first time it is benchmarked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import requests

from tests.bench.verdicts import SetupError
from tests.bench.workload import CalObject

USER, PASSWORD = "admin", "secret123"
# An ordinary calendar: calserver's rdv agenda only takes RDVs with a motif,
# and the workload is generic calendar data.  ``import`` creates it.
CALENDAR = "agenda"
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server(ABC):
    """One CalDAV server: its data lives in ``workdir``, which the caller removes."""

    name: str

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    @abstractmethod
    def collection_url(self) -> str:
        """URL of the calendar under test, with a trailing slash."""

    @abstractmethod
    def load(self, objects: list[CalObject]) -> None:
        """Store ``objects`` without HTTP (the server may not be running)."""

    @abstractmethod
    def _command(self) -> tuple[list[str], dict[str, str]]:
        """The server's command line and extra environment."""

    def _ready(self) -> bool:
        try:
            requests.request("OPTIONS", self.collection_url, auth=(USER, PASSWORD), timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def start(self) -> None:
        command, env = self._command()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, **env},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise SetupError(f"{self.name} did not answer within {START_TIMEOUT} s")

    def peak_rss_kib(self) -> int:
        """Peak resident set size of the server process so far (VmHWM)."""
        assert self.process is not None
        return _proc_status_kib(self.process.pid, "VmHWM")

    def rss_kib(self) -> int:
        """Current resident set size of the server process (VmRSS)."""
        assert self.process is not None
        return _proc_status_kib(self.process.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Radicale(Server):
    """Stock Radicale 3.9, multifilesystem storage, plain htpasswd, owner-only rights."""

    name = "radicale"

    @property
    def collection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{USER}/{CALENDAR}/"

    @property
    def _folder(self) -> Path:
        return self.workdir / "collections"

    def load(self, objects: list[CalObject]) -> None:
        calendar = self._folder / "collection-root" / USER / CALENDAR
        calendar.mkdir(parents=True)
        (calendar / ".Radicale.props").write_text(
            json.dumps({"tag": "VCALENDAR", "D:displayname": "RDV"})
        )
        for obj in objects:
            # Radicale reads its items as bytes and decodes them; keep CRLF as sent.
            (calendar / obj.href).write_bytes(obj.text.encode())

    def _command(self) -> tuple[list[str], dict[str, str]]:
        users = self.workdir / "users"
        users.write_text(f"{USER}:{PASSWORD}\n")
        return [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",
            "--server-hosts",
            f"127.0.0.1:{self.port}",
            "--storage-filesystem-folder",
            str(self._folder),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(users),
            "--auth-htpasswd-encryption",
            "plain",
            "--rights-type",
            "owner_only",
            "--logging-level",
            "warning",
        ], {}


class Xandikos(Server):
    """Xandikos 0.4 serving a git-backed calendar, from the bench's own venv.

    It runs without authentication: its Basic authentication requires TLS
    (``--autocert``), which would time the certificate handshakes instead; the
    bench's credentials are sent and ignored, so Xandikos does slightly less
    work per request than the two others, which check them.
    """

    name = "xandikos"
    REQUIREMENT = "xandikos>=0.4,<0.5"
    VENV = REPO / ".cache" / "xandikos-venv"

    @classmethod
    def executable(cls) -> Path:
        """The venv's ``xandikos`` command, installing it on first use."""
        command = cls.VENV / "bin" / "xandikos"
        if not command.exists():
            subprocess.run([sys.executable, "-m", "venv", str(cls.VENV)], check=True)
            pip = [str(cls.VENV / "bin" / "pip"), "install", "-q", cls.REQUIREMENT]
            done = subprocess.run(pip, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SetupError(f"installing {cls.REQUIREMENT} failed:\n{done.stderr}")
        return command

    @classmethod
    def version(cls) -> str:
        cls.executable()
        done = subprocess.run(
            [str(cls.VENV / "bin" / "python"), "-c",
             "import importlib.metadata as m; print(m.version('xandikos'))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout.strip() or "not installed"

    @property
    def collection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{USER}/{CALENDAR}/"

    @property
    def _folder(self) -> Path:
        return self.workdir / "xandikos"

    def load(self, objects: list[CalObject]) -> None:
        (self._folder / USER).mkdir(parents=True)
        command = [str(self.executable()), "create-collection", "-d", str(self._folder)]
        done = subprocess.run(
            [*command, "--type", "calendar", "--name", f"{USER}/{CALENDAR}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SetupError(f"xandikos create-collection failed:\n{done.stderr}")
        calendar = self._folder / USER / CALENDAR
        for obj in objects:
            (calendar / obj.href).write_bytes(obj.text.encode())
        git = ["git", "-C", str(calendar), "-c", "user.name=bench", "-c", "user.email=b@x"]
        for args in (["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "bench load"]):
            done = subprocess.run([*git, *args], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SetupError(f"git {args[0]} of the Xandikos calendar failed:\n{done.stderr}")

    def _command(self) -> tuple[list[str], dict[str, str]]:
        return [
            str(self.executable()),
            "serve",
            "-d",
            str(self._folder),
            "-l",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--current-user-principal",
            f"/{USER}/",
            "--no-detect-systemd",
        ], {}


class Calserver(Server):
    """calserver on a SQLite file, started with its config.ini.

    ``source`` is the source tree to run (default: this repository's working
    tree, as the venv's ``calserver`` command does); a snapshot of a commit lets
    a long run measure one version while the tree is being edited.
    """

    name = "calserver"

    def __init__(self, workdir: Path, source: Path = REPO) -> None:
        super().__init__(workdir)
        self.source = source

    @property
    def _env(self) -> dict[str, str]:
        return {
            "CALSERVER_DATABASE_URL": f"sqlite:///{self.workdir / 'cal.db'}",
            "CALSERVER_ADMIN_PASSWORD": PASSWORD,
            "PYTHONPATH": str(self.source),
        }

    @property
    def collection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dav/{USER}/{CALENDAR}/"

    def _cli(self, *args: str) -> list[str]:
        main = "import sys; from calserver.cli import main; sys.exit(main())"
        return [sys.executable, "-c", main, "--config", str(self.source / "config.ini"), *args]

    def load(self, objects: list[CalObject]) -> None:
        folder = self.workdir / "import"
        folder.mkdir()
        for obj in objects:
            (folder / obj.href).write_bytes(obj.text.encode())
        # ``migrate`` runs the first-start bootstrap (schema, admin and agendas);
        # ``import`` creates the calendar, even with nothing to import.
        for args in (("migrate",), ("import", f"{USER}/{CALENDAR}", str(folder))):
            done = subprocess.run(
                self._cli(*args),
                cwd=self.workdir,
                capture_output=True,
                text=True,
                env={**os.environ, **self._env},
                check=False,
            )
            if done.returncode != 0:
                raise SetupError(f"calserver {args[0]} failed:\n{done.stdout}{done.stderr}")

    def _command(self) -> tuple[list[str], dict[str, str]]:
        return self._cli("serve", "--host", "127.0.0.1", "--port", str(self.port)), self._env
