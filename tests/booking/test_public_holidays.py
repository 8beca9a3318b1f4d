"""The zones of French public holidays, listed without importing the package."""

from __future__ import annotations

import subprocess
import sys

import holidays

from booking import public_holidays


def test_zones_are_the_package_s_subdivisions() -> None:
    assert tuple(holidays.France.subdivisions) == public_holidays.FRANCE_SUBDIVISIONS
    assert public_holidays.zone_for_department("974") == "974"
    assert public_holidays.zone_for_department("75") == public_holidays.METROPOLE


def test_the_server_starts_without_the_package() -> None:
    check = "import sys, calserver.cli; sys.exit('holidays' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0
