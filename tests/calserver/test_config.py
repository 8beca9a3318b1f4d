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
