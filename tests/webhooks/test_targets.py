"""Which webhook targets the server accepts (SSRF guard on the URL and the
addresses it names)."""

from __future__ import annotations

import pytest

from webhooks.targets import TargetPolicy, TargetRefused, networks

STRICT = TargetPolicy()
TESTS = TargetPolicy(allow_http=True, allowed_networks=networks(["127.0.0.1"]))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.org/hook", "https://"),
        ("ftp://example.org/hook", "https://"),
        ("https:///hook", "no host"),
        ("https://user:pw@example.org/hook", "credentials"),
        ("https://127.0.0.1/hook", "not public"),
        ("https://10.1.2.3/hook", "not public"),
        ("https://192.168.1.1/hook", "not public"),
        ("https://172.16.0.5/hook", "not public"),
        ("https://169.254.169.254/latest/meta-data", "not public"),  # cloud metadata
        ("https://100.64.0.1/hook", "not public"),  # carrier-grade NAT
        ("https://[::1]/hook", "not public"),
        ("https://[fe80::1]/hook", "not public"),
        ("https://[fd00:ec2::254]/hook", "not public"),
        ("https://[::ffff:127.0.0.1]/hook", "not public"),
        ("https://0.0.0.0/hook", "not public"),
        ("https://example.org:99999/hook", "not a valid URL"),
        ("https://example.org/" + "x" * 2000, "at most"),
    ],
)
def test_refused_targets(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        STRICT.check_url(url)


def test_public_https_targets_pass() -> None:
    for url in ("https://dsi.example.fr/webhooks", "https://93.184.216.34:8443/in"):
        assert STRICT.check_url(url) == url


def test_the_allowlist_and_http_are_opt_in() -> None:
    assert TESTS.check_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    with pytest.raises(TargetRefused, match="not public"):
        TESTS.check_url("http://127.0.0.2/hook")  # only the listed address
    assert TESTS.address_allowed("127.0.0.1") and not STRICT.address_allowed("127.0.0.1")
    assert not TESTS.address_allowed("10.0.0.1")


def test_bad_allowlist_entries_are_named() -> None:
    with pytest.raises(ValueError, match="'not-an-ip'"):
        networks(["10.0.0.0/8", "not-an-ip"])
