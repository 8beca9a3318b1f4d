"""Reuse the time zone built from a VTIMEZONE when the same one comes again.

vobject builds a fresh dateutil time zone for every VTIMEZONE it parses, then
checks whether it is UTC by computing offsets, which walks the zone's yearly
rules from their DTSTART (1970 for most clients, 1601 for Outlook) one year at
a time.  On a small event that is more than half of the parse, and every PUT,
REPORT filter and expansion parses.  Clients send the same few VTIMEZONEs over
and over, so the zone is kept by the content of its definition: identical
definitions give identical zones, and a dateutil zone, once built, is never
changed.  Installed once per process by ``install()``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from vobject.base import Component
from vobject.icalendar import TimezoneComponent

_MAX_ZONES = 512
_zones: OrderedDict[tuple, Any] = OrderedDict()
_mutex = threading.Lock()
_build = TimezoneComponent.gettzinfo


def _fingerprint(node: Any) -> tuple:
    """The content of a VTIMEZONE, down to each line's parameters and value."""
    if isinstance(node, Component):
        return (node.name, tuple(_fingerprint(child) for child in node.getChildren()))
    params = tuple(sorted((k, tuple(v)) for k, v in node.params.items()))
    return (node.name, params, str(node.value))


def _cached_tzinfo(component: TimezoneComponent) -> Any:
    if not component.contents:
        return _build(component)
    key = _fingerprint(component)
    with _mutex:
        zone = _zones.get(key)
        if zone is not None:
            _zones.move_to_end(key)
            return zone
    zone = _build(component)
    with _mutex:
        _zones[key] = zone
        if len(_zones) > _MAX_ZONES:
            _zones.popitem(last=False)
    return zone


def install() -> None:
    if TimezoneComponent.tzinfo.fget is not _cached_tzinfo:
        TimezoneComponent.tzinfo = property(_cached_tzinfo, TimezoneComponent.settzinfo)
