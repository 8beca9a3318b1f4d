"""Where the links the server hands out point."""

from __future__ import annotations

from pathlib import Path

import pytest

from calserver.config import ConfigError, load_settings


def _settings(tmp_path: Path, server: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "config.ini"
    config.write_text(f"[server]\n{server}")
    return load_settings(config, env={})


def test_base_url_is_public_url_else_the_bound_address(tmp_path: Path) -> None:
    assert _settings(tmp_path, "public_url = https://rdv.example.fr/\n").base_url == (
        "https://rdv.example.fr"
    )
    assert _settings(tmp_path, "host = 10.0.0.5\nport = 8080\n").base_url == (
        "http://10.0.0.5:8080"
    )
    assert _settings(tmp_path, "host = ::1\nport = 8080\n").base_url == "http://[::1]:8080"


def test_public_url_must_be_an_http_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        _settings(tmp_path, "public_url = rdv.example.fr\n")


def test_smtp_and_sms_settings_with_secrets_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text(
        "[smtp]\nhost = smtp.example.fr\nport = 587\nsecurity = starttls\nuser = rdv\n"
        "password = in-file\nsender = rdv@example.fr\n"
        "[sms]\nprovider = json_http\nurl = https://sms.example.fr/send\ntoken = in-file\n"
    )
    env = {"CALSERVER_SMTP_PASSWORD": "from-env", "CALSERVER_SMS_TOKEN": "token-env"}
    settings = load_settings(config, env=env)
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == (
        "smtp.example.fr", 587, "starttls"
    )  # fmt: skip
    assert (settings.smtp.password, settings.sms.token) == ("from-env", "token-env")
    assert load_settings(config, env={}).smtp.password == "in-file"
    for bad, option in (
        ("[smtp]\nsecurity = ssl\n", "security"),
        ("[sms]\nprovider = carrier-pigeon\n", "provider"),
        ("[sms]\nprovider = json_http\nurl = sms.example.fr\n", "url"),
    ):
        config.write_text(bad)
        with pytest.raises(ConfigError, match=option):
            load_settings(config, env={})
