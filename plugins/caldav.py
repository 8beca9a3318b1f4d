"""Assemble calserver's Radicale: our application class and our three plugins
on one database, with Radicale's own options set for a server that keeps
personal data out of its logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from radicale import config as radicale_config

from plugins import log_redaction, timezone_cache, vobject_text
from plugins.application import Application
from plugins.auth import Auth
from plugins.rights import Rights
from plugins.storage import Storage
from storage.database import Database

# Radicale counts the instances an expanding (or free-busy) REPORT produces, per
# series and per answer, and refuses with a 400 past this: its default (10,000)
# refused a one-month expand of a busy agenda, while a larger one let a single
# dense series fill one answer with hundreds of thousands of instances.
MAX_EXPAND_OCCURRENCES = 20_000


@dataclass(frozen=True)
class CalDAV:
    """Radicale and the very auth and rights objects it uses, which the JSON
    API shares so that a login and a right mean the same on both."""

    application: Application
    auth: Auth
    rights: Rights


def build_caldav(db: Database, *, max_content_length: int, realm: str) -> CalDAV:
    made: dict[type, Any] = {}

    def plugin(cls: type) -> Callable[[radicale_config.Configuration], Any]:
        def make(configuration: radicale_config.Configuration) -> Any:
            made[cls] = cls(configuration, db=db)
            return made[cls]

        return make

    log_redaction.install()
    timezone_cache.install()
    vobject_text.install()
    configuration = radicale_config.load()
    configuration.update(
        {
            # Radicale caps one resource at 80% of a request body and warns on
            # every start when it has to: say it ourselves.
            "server": {
                "max_content_length": str(max_content_length),
                "max_resource_size": str(int(max_content_length * 0.8)),
            },
            # No sleep after a failed login or a 403: it held a CalDAV thread
            # for a second each time; calserver.auth_gate throttles instead.
            "auth": {"type": plugin(Auth), "realm": realm, "delay": "0"},
            "rights": {"type": plugin(Rights)},
            "storage": {"type": plugin(Storage)},
            "web": {"type": "none"},
            "reporting": {
                "max_expand_occurrence": str(MAX_EXPAND_OCCURRENCES),
                "max_freebusy_occurrence": str(MAX_EXPAND_OCCURRENCES),
            },
            "logging": {
                "level": "warning",
                "mask_passwords": "True",
                "bad_put_request_content": "False",
                "request_header_on_debug": "False",
                "request_content_on_debug": "False",
                "response_content_on_debug": "False",
            },
        },
        "calserver",
    )
    application = Application(configuration)
    return CalDAV(application, made[Auth], made[Rights])
