"""The allocator settings apply on glibc and trimming happens only after growth."""

from __future__ import annotations

import platform

import pytest

from calserver.memory import GROWTH_BEFORE_TRIM, Allocator

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the settings are glibc's"
)


def test_tune_applies_every_setting() -> None:
    assert Allocator().tune() is True


def test_trims_once_the_process_has_grown() -> None:
    allocator = Allocator()
    assert allocator.trim_if_grown() is True  # first call: nothing trimmed yet
    assert allocator.trim_if_grown() is False  # not grown since
    grown = bytearray(2 * GROWTH_BEFORE_TRIM)  # zero-filled: resident
    assert allocator.trim_if_grown() is True
    del grown
