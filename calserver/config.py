"""The server's settings: one typed object read from config.ini.

Every option is documented in place in config.ini.  The database URL and the
secrets may instead come from the environment (``CALSERVER_DATABASE_URL``,
``CALSERVER_ADMIN_PASSWORD``), which wins over the file, so that a deployment
never has to write a secret into a file.  A relative SQLite path is relative to
the config file's folder.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from m365.secrets import SecretBox, SecretError
from notifications.email import SECURITY, SmtpSettings
from notifications.sms import PROVIDERS, SmsSettings
from webhooks import targets

DEFAULT_CONFIG = Path("config.ini")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which option and why."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    threads: int
    database_url: str
    max_content_length: int
    realm: str
    organisation_name: str
    organisation_slug: str
    time_zone: str
    admin_login: str
    admin_password: str | None
    log_level: str
    public_url: str
    feed_refresh_minutes: int
    feed_past_days: int
    feed_ahead_days: int
    webhook_allow_http: bool = False
    webhook_allowed_networks: tuple[str, ...] = ()
    webhook_worker: bool = True
    webhook_timeout_seconds: int = 10
    webhook_retry_first_ms: int = 10_000
    webhook_retry_days: int = 3
    webhook_poll_seconds: int = 30
    webhook_keep_delivered_days: int = 30
    webhook_keep_failed_days: int = 90
    notification_worker: bool = True
    notification_retry_first_ms: int = 30_000
    notification_retry_hours: int = 24
    notification_poll_seconds: int = 30
    notification_keep_days: int = 30
    notification_keep_failed_days: int = 90
    smtp: SmtpSettings = SmtpSettings()
    sms: SmsSettings = SmsSettings()
    m365_worker: bool = True
    m365_key: str | None = None
    m365_authority_url: str = "https://login.microsoftonline.com"
    m365_graph_url: str = "https://graph.microsoft.com/v1.0"
    m365_ca_bundle: str | None = None
    m365_timeout_seconds: int = 10
    m365_poll_seconds: int = 30
    m365_retry_first_ms: int = 2_000
    m365_past_days: int = 31
    m365_ahead_days: int = 366
    m365_reconcile_hours: int = 24
    m365_keep_log_days: int = 30
    m365_delegated_tenant: str = "organizations"
    m365_delegated_client_id: str | None = None
    m365_delegated_client_secret: str | None = None

    @property
    def base_url(self) -> str:
        """Where the links the server hands out point (feed URLs, links in
        feeds): ``public_url``, else the address the server is bound to, never
        a request's Host header, which any client sets as it likes."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _sqlite_relative_to(url: str, folder: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database == ":memory:" or Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str((folder / parsed.database).resolve())).render_as_string(
        hide_password=False
    )


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    path = path or DEFAULT_CONFIG
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        parser.read(path, encoding="utf-8")
    elif path != DEFAULT_CONFIG:
        raise ConfigError(f"configuration file {path} does not exist")
    folder = path.resolve().parent

    def get(section: str, option: str, default: str) -> str:
        return parser.get(section, option, fallback=default).strip()

    def get_int(section: str, option: str, default: int) -> int:
        raw = get(section, option, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"[{section}] {option} must be a whole number, not {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"[{section}] {option} must be positive")
        return value

    def get_bool(section: str, option: str, default: bool) -> bool:
        raw = get(section, option, "true" if default else "false").lower()
        if raw not in ("true", "false"):
            raise ConfigError(f"[{section}] {option} must be true or false, not {raw!r}")
        return raw == "true"

    allowed_networks = tuple(
        n.strip() for n in get("webhooks", "allowed_networks", "").split(",") if n.strip()
    )
    try:
        targets.networks(allowed_networks)
    except ValueError as e:
        raise ConfigError(f"[webhooks] allowed_networks: {e}") from None
    host = get("server", "host", "127.0.0.1")
    public_url = get("server", "public_url", "").rstrip("/")
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ConfigError(f"[server] public_url must start with https://, not {public_url!r}")
    port = get_int("server", "port", 5232)
    database_url = env.get("CALSERVER_DATABASE_URL") or get(
        "database", "url", "sqlite:///calserver.db"
    )
    try:
        database_url = _sqlite_relative_to(database_url, folder)
    except Exception as e:
        raise ConfigError(f"[database] url is not a database URL: {e}") from None
    security = get("smtp", "security", "none").lower()
    if security not in SECURITY:
        raise ConfigError(f"[smtp] security must be one of {', '.join(SECURITY)}, not {security!r}")
    smtp = SmtpSettings(
        host=get("smtp", "host", ""),
        port=get_int("smtp", "port", 25),
        security=security,
        user=get("smtp", "user", ""),
        password=env.get("CALSERVER_SMTP_PASSWORD") or get("smtp", "password", ""),
        sender=get("smtp", "sender", "rdv@localhost"),
        timeout_s=get_int("smtp", "timeout_seconds", 20),
    )
    provider = get("sms", "provider", "none").lower()
    if provider != "none" and provider not in PROVIDERS:
        known = ", ".join(("none", *PROVIDERS))
        raise ConfigError(f"[sms] provider must be one of {known}, not {provider!r}")
    sms = SmsSettings(
        provider=provider,
        url=get("sms", "url", ""),
        token=env.get("CALSERVER_SMS_TOKEN") or get("sms", "token", ""),
        sender=get("sms", "sender", ""),
        timeout_s=get_int("sms", "timeout_seconds", 10),
        max_segments=get_int("sms", "max_segments", 3),
    )
    if provider != "none" and not sms.url.startswith(("https://", "http://")):
        raise ConfigError("[sms] url must be the provider's http(s) address")
    m365_key = env.get("CALSERVER_M365_KEY") or get("m365", "key", "") or None
    if m365_key:
        try:
            SecretBox(m365_key)
        except SecretError as e:
            raise ConfigError(f"[m365] key: {e}") from None
    m365_urls = {}
    for option, default in (
        ("authority_url", "https://login.microsoftonline.com"),
        ("graph_url", "https://graph.microsoft.com/v1.0"),
    ):
        m365_urls[option] = get("m365", option, default).rstrip("/")
        if not m365_urls[option].startswith("https://"):
            raise ConfigError(f"[m365] {option} must start with https://")
    ca_bundle = get("m365", "ca_bundle", "")
    if ca_bundle:
        ca_path = Path(ca_bundle) if Path(ca_bundle).is_absolute() else folder / ca_bundle
        if not ca_path.is_file():
            raise ConfigError(f"[m365] ca_bundle: {ca_path} is not a file")
        ca_bundle = str(ca_path)
    return Settings(
        host=host,
        port=port,
        threads=get_int("server", "threads", 4),
        database_url=database_url,
        max_content_length=get_int("caldav", "max_content_length", 1_048_576),
        realm=get("caldav", "realm", "calserver"),
        organisation_name=get("bootstrap", "organisation_name", "Mon organisation"),
        organisation_slug=get("bootstrap", "organisation_slug", "mon-organisation"),
        time_zone=get("bootstrap", "time_zone", "Europe/Paris"),
        admin_login=get("bootstrap", "admin_login", "admin"),
        admin_password=env.get("CALSERVER_ADMIN_PASSWORD") or None,
        log_level=get("logging", "level", "info").upper(),
        public_url=public_url,
        feed_refresh_minutes=get_int("feeds", "refresh_minutes", 60),
        feed_past_days=get_int("feeds", "past_days", 31),
        feed_ahead_days=get_int("feeds", "ahead_days", 366),
        webhook_allow_http=get_bool("webhooks", "allow_http", False),
        webhook_allowed_networks=allowed_networks,
        webhook_worker=get_bool("webhooks", "worker", True),
        webhook_timeout_seconds=get_int("webhooks", "timeout_seconds", 10),
        webhook_retry_first_ms=get_int("webhooks", "retry_first_ms", 10_000),
        webhook_retry_days=get_int("webhooks", "retry_days", 3),
        webhook_poll_seconds=get_int("webhooks", "poll_seconds", 30),
        webhook_keep_delivered_days=get_int("webhooks", "keep_delivered_days", 30),
        webhook_keep_failed_days=get_int("webhooks", "keep_failed_days", 90),
        notification_worker=get_bool("notifications", "worker", True),
        notification_retry_first_ms=get_int("notifications", "retry_first_ms", 30_000),
        notification_retry_hours=get_int("notifications", "retry_hours", 24),
        notification_poll_seconds=get_int("notifications", "poll_seconds", 30),
        notification_keep_days=get_int("notifications", "keep_days", 30),
        notification_keep_failed_days=get_int("notifications", "keep_failed_days", 90),
        smtp=smtp,
        sms=sms,
        m365_worker=get_bool("m365", "worker", True),
        m365_key=m365_key,
        m365_authority_url=m365_urls["authority_url"],
        m365_graph_url=m365_urls["graph_url"],
        m365_ca_bundle=ca_bundle or None,
        m365_timeout_seconds=get_int("m365", "timeout_seconds", 10),
        m365_poll_seconds=get_int("m365", "poll_seconds", 30),
        m365_retry_first_ms=get_int("m365", "retry_first_ms", 2_000),
        m365_past_days=get_int("m365", "past_days", 31),
        m365_ahead_days=get_int("m365", "ahead_days", 366),
        m365_reconcile_hours=get_int("m365", "reconcile_hours", 24),
        m365_keep_log_days=get_int("m365", "keep_log_days", 30),
        m365_delegated_tenant=get("m365", "delegated_tenant", "organizations") or "organizations",
        m365_delegated_client_id=get("m365", "delegated_client_id", "") or None,
        m365_delegated_client_secret=(
            env.get("CALSERVER_M365_DELEGATED_CLIENT_SECRET")
            or get("m365", "delegated_client_secret", "")
            or None
        ),
    )
