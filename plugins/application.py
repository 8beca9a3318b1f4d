"""calserver's Radicale: the stock application with a few protocol answers fixed.

- A refused write answers 403 with a precondition element and a readable
  ``DAV:responsedescription`` (stock Radicale answers a bare 400): malformed
  iCalendar gets ``CALDAV:valid-calendar-data``; a ``WriteRefused`` raised by
  the storage (booking rules, later) gets its own precondition.  Nothing is
  stored in either case: the exception rolls the request's transaction back.
- An XML body that declares entities, or nests elements deeper than
  ``plugins.xml_depth.MAX_DEPTH``, is refused with 400 (stock Radicale's
  defusedxml error and its recursion over a deep tree escape as 500s).
- Calendar data that is not UTF-8 or holds control characters (NUL...) is
  refused with ``CALDAV:valid-calendar-data`` on every calendar (stock
  Radicale falls back to Latin-1, and PostgreSQL cannot store a NUL).
- A request whose Content-Type names a charset Python does not know answers
  415 (stock Radicale fails looking the codec up, a 500); unreadable Basic
  credentials answer 401 (stock Radicale fails decoding them, a 500), and
  so do wrong ones (``Auth`` raises; Radicale would answer 403).
- ``sync-collection`` honours ``DAV:limit`` (RFC 6578 §3.7): the storage stops
  after N changes and the answer carries the 507 response for the collection.
- A calendar-query with ``expand`` lets the storage pre-filter on the
  time range, which stock Radicale drops before asking the storage.
- GET of a whole calendar is exported already encoded (half the memory).
- What a colleague reads of another agent's absences is masked (times only,
  "Indisponible"): reading requests tell the storage who reads
  (``plugins.rights.Rights.masks``).
- A PROPFIND Depth 1 on a calendar for etags (and content types, resource
  types, modification dates) writes the items' responses from their database
  rows (``plugins.etag_listing``) after Radicale's own checks; so does a first
  sync-collection (no token) for etags and content types.
- A calendar-query for whole VEVENTs (etags, calendar data) in a time range
  writes its answer from the occurrence index and the stored texts
  (``plugins.range_report``) after Radicale's own checks.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import io
import itertools
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from http import client
from typing import Any

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from radicale import Application as RadicaleApplication
from radicale import httputils, pathutils, types, xmlutils
from radicale import item as radicale_item
from radicale.app.base import Access
from radicale.app.propfind import xml_propfind
from radicale.app.report import test_filter
from radicale.item import filter as radicale_filter

from booking.recurrence import SERIES_BUDGET, never_occurs
from plugins import etag_listing, expand_report, range_report, xml_depth
from plugins import storage as sql_storage
from plugins.credentials import MalformedCredentials, WrongCredentials, parse_basic
from plugins.errors import WriteRefused
from plugins.expansion import TooManyInstances
from plugins.expansion import expand as expansion_of
from plugins.rights import Rights
from plugins.rule_scan import rules_with_starts
from storage.text import unstorable

DAV_LIMIT = "{DAV:}limit"
# Properties whose value is computed from an item's text.
TEXT_PROPERTIES = frozenset(
    xmlutils.make_clark(tag) for tag in ("C:calendar-data", "D:getcontentlength", "CR:address-data")
)

# Reports that walk hrefs without filtering on content.
UNFILTERED_REPORTS = frozenset(
    xmlutils.make_clark(tag) for tag in ("D:sync-collection", "C:calendar-multiget")
)


def _parse(body: bytes) -> ET.Element | None:
    """The XML body for calserver's own look at it; None when Radicale must
    answer it (empty, malformed, entities, too deep)."""
    if not body or xml_depth.too_deep(body):
        return None
    try:
        return DefusedET.fromstring(body)
    except (ET.ParseError, DefusedXmlException):
        return None


def _asks_for_texts(root: ET.Element | None) -> bool:
    """Whether the requested properties are computed from items' texts
    (allprop, propname and an empty body include getcontentlength)."""
    prop = root.find(xmlutils.make_clark("D:prop")) if root is not None else None
    return prop is None or any(child.tag in TEXT_PROPERTIES for child in prop)


@contextmanager
def _bound(var: ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def _error_body(precondition: str, description: str) -> ET.Element:
    root = ET.Element(xmlutils.make_clark("D:error"))
    clark = precondition if precondition.startswith("{") else xmlutils.make_clark(precondition)
    ET.SubElement(root, clark)
    ET.SubElement(root, xmlutils.make_clark("D:responsedescription")).text = description
    return root


def _calendar_data_problem(body: bytes) -> str:
    """Say, for a person, why Radicale could not take this iCalendar body."""
    text = body.decode("utf-8", errors="replace")  # do_PUT refused invalid UTF-8
    try:
        components = radicale_item.read_components(text)
    except Exception as e:  # vobject raises many kinds
        return f"The calendar data is not valid iCalendar: {e}".splitlines()[0][:300]
    if not components:
        return "The request body holds no calendar object."
    try:
        radicale_item.check_and_sanitize_items(
            components, max_vevent_rrule_occurrence=SERIES_BUDGET, tag="VCALENDAR"
        )
    except ValueError as e:  # e.g. a repetition of more than SERIES_BUDGET instances
        return f"The calendar object is not acceptable: {e}".splitlines()[0][:300]
    return (
        "The calendar object is not acceptable: it must hold one component type "
        "(VEVENT, VTODO or VJOURNAL) with one UID and valid dates."
    )


def _text_problem(body: bytes) -> str | None:
    """Why calendar data cannot be stored as text, whatever the calendar."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "The calendar data is not valid UTF-8."
    problem = unstorable(text)
    if problem is not None:
        return f"The calendar data contains {problem}, which iCalendar does not allow."
    return None


def _recurrence_problem(text: str) -> str | None:
    """A repeating component whose rule never produces an occurrence: Radicale
    would search for one until the year 9999 (minutes of CPU) before storing it.
    Read from the text's lines: Radicale's parse stays the PUT's only one."""
    if "RRULE" not in text.upper():
        return None
    for rule, first in rules_with_starts(text):
        if never_occurs(rule, first):
            return f"The repetition {rule[:80]!r} never produces an occurrence."
    return None


def _unknown_charset(environ: types.WSGIEnviron) -> bool:
    """Whether the request names a charset Radicale would fail to look up
    (read as ``radicale.httputils.decode_request`` reads it)."""
    content_type = environ.get("CONTENT_TYPE") or ""
    if "charset=" not in content_type:
        return False
    try:
        codecs.lookup(content_type.split("charset=")[1].split(";")[0].strip())
    except LookupError:
        return True
    return False


def _read_body(environ: types.WSGIEnviron) -> bytes:
    """Read the request body once and put it back for Radicale to read again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _report_hints(root: ET.Element | None) -> tuple[int | None, tuple[int, int] | None]:
    """DAV:limit of a sync-collection and the time range of an expanding query."""
    if root is None:
        return None, None
    limit = None
    if root.tag == xmlutils.make_clark("D:sync-collection"):
        nresults = root.find(f"{DAV_LIMIT}/{{DAV:}}nresults")
        if nresults is not None and (nresults.text or "").strip().isdigit():
            limit = int(nresults.text.strip())
    window = None
    if root.find(".//" + xmlutils.make_clark("C:expand")) is not None:
        comp = xmlutils.make_clark("C:comp-filter")
        for outer in root.iterfind(f".//{comp}"):
            for inner in outer.iterfind(comp):
                time_range = inner.find(xmlutils.make_clark("C:time-range"))
                if time_range is not None:
                    try:
                        window = radicale_filter.time_range_timestamps(time_range)
                    except ValueError:  # Radicale answers the malformed range itself
                        window = None
    return limit, window


def _bad_request_reason(environ: types.WSGIEnviron, body: bytes) -> str | None:
    """Say, for a person, why Radicale answered a bare 400 to a request
    calserver refuses on purpose (a path the database cannot hold, XML nested
    too deep); None for other 400s, whose reason Radicale keeps to its log."""
    problem = unstorable(environ.get("PATH_INFO", ""))
    if problem is not None:
        return f"The path contains {problem}."
    if body and xml_depth.too_deep(body):
        return (
            f"The XML body is nested deeper than {xml_depth.MAX_DEPTH} levels; "
            "WebDAV requests need a dozen at most."
        )
    return None


class Application(RadicaleApplication):
    def _reading(self, user: str) -> contextlib.AbstractContextManager[None]:
        """While a request of ``user`` reads, the storage masks what the
        rights say that agent reads masked."""
        assert isinstance(self._rights, Rights)
        return _bound(sql_storage.masked_for, functools.partial(self._rights.masks, user))

    def _handle_request(
        self, environ: types.WSGIEnviron
    ) -> tuple[str, list, list[bytes] | Iterator[bytes]]:
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if _unknown_charset(environ):
            answer = b"The Content-Type names a charset this server does not know.\n"
            return "415 Unsupported Media Type", headers, [answer]
        body = _read_body(environ)
        try:
            parse_basic(environ.get("HTTP_AUTHORIZATION"))
            holder: list[Iterator[bytes]] = []
            with _bound(sql_storage.answer_pieces, holder):
                status, answer_headers, answer = super()._handle_request(environ)
        except (MalformedCredentials, WrongCredentials) as refused:
            challenge = f'Basic realm="{self._auth_realm}", charset="UTF-8"'
            headers.append(("WWW-Authenticate", challenge))
            return "401 Unauthorized", headers, [f"{refused}\n".encode()]
        if holder:
            return status, *_streamed(answer_headers, holder[0])
        if status.startswith("400 "):
            reason = _bad_request_reason(environ, body)
            if reason is not None:
                return status, headers, [f"{reason}\n".encode()]
        return status, answer_headers, answer

    def _reader(self, path: str, user: str, user_groups: set) -> Access | None:
        """The access of a reader of ``path`` whom calserver's own listings may
        answer; None when Radicale must (sharing on, or no read right: Radicale
        may then answer free-busy only, or refuse)."""
        if self._sharing._enabled:
            return None
        access = Access(self._rights, user, user_groups, path)
        return access if "r" in access.permissions else None

    @staticmethod
    def _in_pieces(pieces: Iterator[bytes]) -> bytes:
        """The body to give Radicale for an answer made in pieces: empty, the
        pieces being sent after it (see ``_streamed``); the whole answer when
        no request is under way (a direct call)."""
        holder = sql_storage.answer_pieces.get()
        if holder is None:
            return b"".join(pieces)
        holder.append(pieces)
        return b""

    def _refusal(
        self,
        precondition: str,
        description: str,
        request_info: dict,
        status: int = client.FORBIDDEN,
    ) -> types.WSGIResponse:
        headers = {"Content-Type": f"text/xml; charset={self._encoding}"}
        body = self._xml_response(_error_body(precondition, description), request_info)
        return status, headers, body, None

    def _read_xml_request_body(
        self, environ: types.WSGIEnviron, request_info: dict
    ) -> ET.Element | None:
        if xml_depth.too_deep(_read_body(environ)):
            raise RuntimeError(f"XML nested deeper than {xml_depth.MAX_DEPTH} levels is refused")
        try:
            return super()._read_xml_request_body(environ, request_info)
        except DefusedXmlException as e:
            raise RuntimeError(f"XML entity declarations are refused: {e}") from None

    def do_PUT(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        request_info: dict,
    ) -> types.WSGIResponse:
        body = _read_body(environ)
        problem = _text_problem(body)
        if problem is None:
            problem = _recurrence_problem(body.decode("utf-8"))
        if problem is not None and Access(self._rights, user, user_groups, path).check("w"):
            return self._refusal("C:valid-calendar-data", problem, request_info)
        restamped: list[bool] = []
        try:
            with _bound(sql_storage.restamped, restamped):
                answer = super().do_PUT(environ, base_prefix, path, user, user_groups, request_info)
        except WriteRefused as refused:
            return self._refusal(refused.precondition, refused.description, request_info)
        if answer[0] == client.BAD_REQUEST:
            return self._refusal(
                "C:valid-calendar-data", _calendar_data_problem(body), request_info
            )
        if restamped and answer[1]:
            status, headers, content, xml_request = answer
            answer = status, {k: v for k, v in headers.items() if k != "ETag"}, content, xml_request
        return answer

    def do_MOVE(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        request_info: dict,
    ) -> types.WSGIResponse:
        try:
            return super().do_MOVE(environ, base_prefix, path, user, user_groups, request_info)
        except WriteRefused as refused:
            return self._refusal(refused.precondition, refused.description, request_info)

    def do_GET(self, environ: types.WSGIEnviron, *request: Any) -> types.WSGIResponse:
        """Radicale's GET (``request`` is the rest of its arguments), with a whole
        calendar exported encoded; Radicale adds the charset to text answers only."""
        user = request[2]
        with _bound(sql_storage.export_encoding, self._encoding), self._reading(user):
            status, headers, answer, xml_request = super().do_GET(environ, *request)
        content_type = dict(headers).get("Content-Type", "")
        if isinstance(answer, bytes) and content_type == "text/calendar":
            headers = {**dict(headers), "Content-Type": f"{content_type}; charset={self._encoding}"}
        return status, headers, answer, xml_request

    def do_PROPFIND(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        request_info: dict,
    ) -> types.WSGIResponse:
        root = _parse(_read_body(environ))
        properties = etag_listing.requested_properties(root)
        if environ.get("HTTP_DEPTH") == "1" and properties is not None:
            answer = self._etag_listing(
                base_prefix, path, user, user_groups, root, properties, request_info
            )
            if answer is not None:
                return answer
        with _bound(sql_storage.texts_needed, _asks_for_texts(root)), self._reading(user):
            return super().do_PROPFIND(environ, base_prefix, path, user, user_groups, request_info)

    def _etag_listing(
        self,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        root: ET.Element | None,
        properties: list[str],
        request_info: dict,
    ) -> types.WSGIResponse | None:
        """Radicale's PROPFIND Depth 1 answer on a calendar, with the items'
        responses written from their heads; None when Radicale must answer
        (sharing, refusals, anything but a plain readable calendar).

        The checks are Radicale's, in its order: read access to the path and
        to the collection found, then the collection's rights as
        ``_collect_allowed_items`` reads them; it reads the same rights (those
        of the collection's path) for each item, so the items are listed
        exactly when the collection is listed with "r" or "w".
        """
        access = self._reader(path, user, user_groups)
        if access is None:
            return None
        with self._storage.acquire_lock("r", user):
            found = self._storage.calendar_heads(path)
            if found is None or not access.check("r", found[0]):
                return None
            collection, heads = found
            allowed = list(self._collect_allowed_items([collection], user, user_groups))
        if [permission for _, permission, _ in allowed] not in (["r"], ["w"]):
            return None
        multistatus = xml_propfind(
            self,
            base_prefix,
            path,
            root,
            [(*entry, None) for entry in allowed],
            user,
            self._encoding,
            max_resource_size=self._max_resource_size,
        )
        if multistatus is None:
            return None
        head = self._xml_response(multistatus, request_info)
        end = head.rfind(b"</")
        items = etag_listing.item_responses(
            base_prefix + pathutils.unstrip_path(collection.path, True),
            heads,
            properties,
            self._encoding,
        )
        headers = {
            "DAV": httputils.DAV_HEADERS,
            "Content-Type": f"text/xml; charset={self._encoding}",
        }
        request_info["status"] = client.MULTI_STATUS
        answer = self._in_pieces(itertools.chain([head[:end]], items, [head[end:]]))
        return client.MULTI_STATUS, headers, answer, xmlutils.pretty_xml(root)

    def _sync_listing(
        self,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        root: ET.Element,
        properties: list[str],
        request_info: dict,
    ) -> types.WSGIResponse | None:
        """Radicale's answer to a first sync-collection on a calendar, with the
        items' responses written from their heads; None when Radicale must
        answer (sharing, refusals, anything but a plain readable calendar).

        The checks are Radicale's ``do_REPORT``'s: read access to the path and
        to the collection found; the items of a readable collection are all
        listed.
        """
        access = self._reader(path, user, user_groups)
        if access is None:
            return None
        with self._storage.acquire_lock("r", user):
            found = self._storage.initial_sync_heads(path)
            if found is None or not access.check("r", found[0]):
                return None
        collection, token, heads = found
        multistatus = ET.Element(xmlutils.make_clark("D:multistatus"))
        ET.SubElement(multistatus, xmlutils.make_clark("D:sync-token")).text = token
        head = self._xml_response(multistatus, request_info)
        end = head.rfind(b"</")
        items = etag_listing.item_responses(
            base_prefix + pathutils.unstrip_path(collection.path, True),
            heads,
            properties,
            self._encoding,
        )
        headers = {"Content-Type": f"text/xml; charset={self._encoding}"}
        request_info["status"] = client.MULTI_STATUS
        truncated = sql_storage.sync_truncated.get()
        rest = [_insufficient_storage(base_prefix + path)] if truncated and any(truncated) else []
        answer = self._in_pieces(itertools.chain([head[:end]], items, rest, [head[end:]]))
        return client.MULTI_STATUS, headers, answer, xmlutils.pretty_xml(root)

    def _expand_listing(
        self,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        root: ET.Element,
        query: expand_report.ExpandQuery,
        request_info: dict,
    ) -> types.WSGIResponse | None:
        """A calendar-query with ``<C:expand>`` (or limit-recurrence-set) on a
        calendar, answered from the items' kept expansions; None when Radicale
        must answer (sharing, refusals, anything but a plain readable calendar,
        an item that cannot be expanded).  The checks are ``do_REPORT``'s."""
        access = self._reader(path, user, user_groups)
        if access is None:
            return None
        cache = self._storage.expansions
        window = query.instances_window
        with self._storage.acquire_lock("r", user):
            found = self._storage.events_in_range(path, *window)
            if found is None or not access.check("r", found[0]):
                return None
            collection, rows = found[0], [row for row, _ in found[1]]
            if collection.masked:  # a colleague's absences: the generic path masks them
                return None
            kept = {row.href: cache.get(row.etag) for row in rows}
            wanted = [
                row.href
                for row in rows
                if query.limit_set is not None
                or (expansion := kept[row.href]) is None
                or not expansion.covers(*window)
            ]
            texts = collection.load_texts(wanted) if wanted else {}
        cap = self.configuration.get("reporting", "max_expand_occurrence")
        matches: list[expand_report.Match] = []
        try:
            for row in rows:
                expansion = kept[row.href]
                if expansion is None:
                    expansion = expansion_of(texts[row.href], row.t_start, row.t_end)
                    cache.put(row.etag, expansion)
                if not expansion.covers(*window):
                    expansion = expansion.beyond(texts[row.href], *window, cap)
                match = expand_report.match(
                    query, row.href, row.etag, texts.get(row.href), expansion
                )
                if match is not None:
                    matches.append(match)
        except TooManyInstances:
            return httputils.BAD_REQUEST
        except ValueError:  # not readable by icalendar: Radicale says what it makes of it
            return None
        if cap and sum(len(match.instances) for match in matches) > cap:
            return httputils.BAD_REQUEST
        headers = {"Content-Type": f"text/xml; charset={self._encoding}"}
        request_info["status"] = client.MULTI_STATUS
        answer = self._in_pieces(
            expand_report.multistatus(
                base_prefix + pathutils.unstrip_path(collection.path, True),
                query,
                matches,
                self._encoding,
            )
        )
        return client.MULTI_STATUS, headers, answer, xmlutils.pretty_xml(root)

    def _range_listing(
        self,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        root: ET.Element,
        query: range_report.QueryShape,
        request_info: dict,
    ) -> types.WSGIResponse | None:
        """A calendar-query for whole VEVENTs in a time range on a calendar,
        answered from the occurrence index and the stored texts; None when
        Radicale must answer (sharing, refusals, anything but a plain readable
        calendar, a test of Radicale's filter that fails, more VEVENTs than
        Radicale answers).  The checks are ``do_REPORT``'s; a candidate the
        index is not certain of is tested as ``xml_report`` tests it."""
        access = self._reader(path, user, user_groups)
        if access is None:
            return None
        with self._storage.acquire_lock("r", user):
            found = self._storage.events_in_range(path, *query.window, texts=True)
            if found is None or not access.check("r", found[0]):
                return None
        collection, candidates = found
        if collection.masked:  # a colleague's absences: the generic path masks them
            return None
        try:
            rows = [
                row
                for row, certain in candidates
                if certain
                or test_filter("VCALENDAR", sql_storage.StoredItem(collection, row), query.filter)
            ]
        except Exception:  # Radicale says what it makes of it
            return None
        texts = [row.text or "" for row in rows]
        cap = self.configuration.get("reporting", "max_expand_occurrence")
        if range_report.DATA in query.properties and range_report.too_many_events(texts, cap):
            return None
        headers = {"Content-Type": f"text/xml; charset={self._encoding}"}
        request_info["status"] = client.MULTI_STATUS
        answer = self._in_pieces(
            range_report.multistatus(
                base_prefix + pathutils.unstrip_path(collection.path, True),
                query.properties,
                rows,
                lambda row: row.text or "",
                self._encoding,
            )
        )
        return client.MULTI_STATUS, headers, answer, xmlutils.pretty_xml(root)

    def do_REPORT(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set,
        request_info: dict,
    ) -> types.WSGIResponse:
        root = _parse(_read_body(environ))
        limit, window = _report_hints(root)
        texts = root is None or root.tag not in UNFILTERED_REPORTS
        truncated: list[bool] = []
        report: Callable[..., types.WSGIResponse] = super().do_REPORT
        properties = etag_listing.initial_sync_properties(root)
        with (
            _bound(sql_storage.sync_limit, limit),
            _bound(sql_storage.sync_truncated, truncated),
            _bound(sql_storage.expand_range, window),
            _bound(sql_storage.texts_needed, texts),
            self._reading(user),
        ):
            listing = None
            if properties is not None:
                assert root is not None
                listing = self._sync_listing(
                    base_prefix, path, user, user_groups, root, properties, request_info
                )
            elif (query := expand_report.parse(root)) is not None:
                assert root is not None
                listing = self._expand_listing(
                    base_prefix, path, user, user_groups, root, query, request_info
                )
            elif (shape := range_report.parse(root)) is not None:
                assert root is not None
                listing = self._range_listing(
                    base_prefix, path, user, user_groups, root, shape, request_info
                )
            if listing is not None:
                return listing
            status, headers, answer, xml_request = report(
                environ, base_prefix, path, user, user_groups, request_info
            )
        if any(truncated) and status == client.MULTI_STATUS and isinstance(answer, bytes):
            end = answer.rfind(b"</")
            answer = answer[:end] + _insufficient_storage(base_prefix + path) + answer[end:]
        return status, headers, answer, xml_request


def _streamed(
    headers: list[tuple[str, str]], pieces: Iterator[bytes]
) -> tuple[list[tuple[str, str]], Iterator[bytes]]:
    """The headers and body of an answer sent in pieces: no Content-Length
    (the length is not known before the end), each piece compressed as it
    comes when Radicale chose gzip for the answer."""
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    if ("Content-Encoding", "gzip") in kept:
        return kept, _gzipped(pieces)
    return kept, pieces


# Listings repeat the same markup: the fastest level compresses them about
# twice as fast as zlib's default, to a few percent more bytes.
GZIP_LEVEL = 1


def _gzipped(pieces: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(GZIP_LEVEL, wbits=16 + zlib.MAX_WBITS)
    for piece in pieces:
        if packed := compressor.compress(piece):
            yield packed
    yield compressor.flush()


def _insufficient_storage(href: str) -> bytes:
    """RFC 6578's 507 response for the collection, ending a truncated sync answer."""
    response = ET.Element(xmlutils.make_clark("D:response"))
    ET.SubElement(response, xmlutils.make_clark("D:href")).text = href
    ET.SubElement(
        response, xmlutils.make_clark("D:status")
    ).text = "HTTP/1.1 507 Insufficient Storage"
    error = ET.SubElement(response, xmlutils.make_clark("D:error"))
    ET.SubElement(error, xmlutils.make_clark("D:number-of-matches-within-limits"))
    return ET.tostring(response, encoding="utf-8", xml_declaration=False)
