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


@pytest.mark.parametrize(
    "address",
    [
        "192.0.0.9",  # 192.0.0.0/24 specials that is_global calls global
        "192.0.0.10",
        "192.0.0.170",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the cloud metadata address
        "64:ff9b:1::808:808",  # local-use NAT64, whatever it embeds
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "::a00:1",
        "::8.8.8.8",  # IPv4-compatible is deprecated: refused whatever it embeds
        "::ffff:0:a00:1",  # IPv4-translated
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "ff02::1",
        "ff0e::1",  # global-scope multicast
        "0.0.0.0",  # unspecified
        "::",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "fec0::1",  # site-local
        "100::1",  # discard
        "2001:db8::1",  # documentation
        "198.18.0.1",  # benchmarking
        "fe80::1%eth0",  # link-local with a zone
    ],
)
def test_addresses_that_reach_no_public_host_are_refused(address: str) -> None:
    assert not STRICT.address_allowed(address)
    literal = f"[{address.split('%')[0]}]" if ":" in address else address
    with pytest.raises(TargetRefused, match="not public"):
        STRICT.check_url(f"https://{literal}/hook")


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_however_written_pass(address: str) -> None:
    assert STRICT.address_allowed(address)


def test_the_allowlist_and_http_are_opt_in() -> None:
    assert TESTS.check_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    with pytest.raises(TargetRefused, match="not public"):
        TESTS.check_url("http://127.0.0.2/hook")  # only the listed address
    assert TESTS.address_allowed("127.0.0.1") and not STRICT.address_allowed("127.0.0.1")
    assert not TESTS.address_allowed("10.0.0.1")
    assert TESTS.address_allowed("::ffff:127.0.0.1")  # the allowed address, written as IPv6
    assert not TESTS.address_allowed("::127.0.0.2")


def test_bad_allowlist_entries_are_named() -> None:
    with pytest.raises(ValueError, match="'not-an-ip'"):
        networks(["10.0.0.0/8", "not-an-ip"])
