"""The outside world of the on/off booking benchmarks, in a process of its own.

The webhook receiver (``tests.webhooks.receiver``, every request verified),
the SMTP server (aiosmtpd) and the SMS provider (``tests.notifications.fakes``)
run here, not in the bench's process: there their verifying and parsing would
hold the bench client's GIL while it times a booking, and the "on" rounds
would pay for the receivers' work as well as the server's.  In their own
process they compete only for the CPU, as a DSI's receiver or an SMTP relay
on the same host would.

``python -m tests.bench.sinks`` prints one JSON line with its addresses, then
answers one JSON line per command read on stdin: ``secret <whsec_...>`` (a
secret the receiver verifies with), ``count`` (what arrived so far); it stops
at the end of its input.  ``Sinks`` is the bench's side of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import IO, Any

from tests.bench.servers import REPO
from tests.notifications.fakes import SmsProvider, SmtpServer
from tests.webhooks.receiver import Receiver


def _counts(receiver: Receiver, smtp: SmtpServer, sms: SmsProvider) -> dict[str, Any]:
    hooks: dict[str, dict[str, int]] = {}
    received = list(receiver.received)
    for request in received:
        seen = hooks.setdefault(request.path, {"delivered": 0, "verified": 0, "distinct": 0})
        seen["delivered"] += 1
        seen["verified"] += request.verified
    for path, seen in hooks.items():
        seen["distinct"] = len({r.headers["webhook-id"] for r in received if r.path == path})
    emails: dict[str, int] = {}
    for message in list(smtp.mailbox.messages):
        emails[str(message["To"])] = emails.get(str(message["To"]), 0) + 1
    texts: dict[str, int] = {}
    for message in list(sms.received):
        texts[message["to"]] = texts.get(message["to"], 0) + 1
    return {"hooks": hooks, "emails": emails, "sms": texts}


def serve(commands: IO[str], out: IO[str]) -> None:
    receiver, smtp, sms = Receiver().start(), SmtpServer().start(), SmsProvider().start()
    try:
        out.write(json.dumps({"receiver": receiver.url(""), "smtp": smtp.port, "sms": sms.url}))
        out.write("\n")
        out.flush()
        for line in commands:
            command, _, argument = line.strip().partition(" ")
            if command == "secret":
                receiver.secrets.append(argument)
                answer: dict[str, Any] = {"secrets": len(receiver.secrets)}
            else:
                answer = _counts(receiver, smtp, sms)
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        receiver.close()
        smtp.stop()
        sms.stop()


class Sinks:
    """The bench's handle on the sinks process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.sinks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        started = self._answer()
        self.receiver_url: str = started["receiver"]
        self.smtp_port: int = started["smtp"]
        self.sms_url: str = started["sms"]

    def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the sinks process stopped")
        return json.loads(line)

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._answer()

    def secret(self, secret: str) -> None:
        self._ask(f"secret {secret}")

    def counts(self) -> dict[str, Any]:
        return self._ask("count")

    def wait(self, what: str, key: str, count: int, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until ``count`` have arrived at ``key`` (``what``: ``hooks``,
        a receiver path; ``emails``, an address; ``sms``, a number); the counts."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.counts()
            arrived = found[what].get(key, 0)
            arrived = arrived["delivered"] if what == "hooks" and arrived else arrived
            if arrived >= count:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} {key}: {arrived} arrived of {count}")
            time.sleep(0.05)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(20)


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
