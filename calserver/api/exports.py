"""An organisation's RDV list as a file: CSV or XLSX, French headers, times
in the organisation's zone.

One row per RDV: date, start and end, duration, status (in words), motif,
service, lieu, agent, its usagers' names and the RDV's id.  No more about
usagers than their names (the agent reading the list sees them in the agendas
it may read, which are the only ones listed): no email, phone or address.

CSV: UTF-8 with a byte order mark and ``;`` between fields, so that Excel in
a French locale opens it with its accents and columns right; CRLF line ends
(RFC 4180).  XLSX: openpyxl in write-only mode (rows streamed into the sheet,
never a whole workbook in memory), dates and times as real date and time
cells.  Text that a spreadsheet would run as a formula (``=...``; in CSV also
``+``, ``-``, ``@`` and control characters first) is kept as text.
openpyxl (17 MiB) is imported by the first XLSX asked for, not at start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from booking.model import RDV_STATUSES

HEADERS = (
    "Date",
    "Début",
    "Fin",
    "Durée (min)",
    "Statut",
    "Motif",
    "Service",
    "Lieu",
    "Agent",
    "Usagers",
    "Identifiant",
)
STATUS_LABELS = {
    "unknown": "À venir",
    "seen": "Présent",
    "noshow": "Absent non excusé",
    "excused": "Annulé par l'usager",
    "revoked": "Annulé par le service",
}
assert tuple(STATUS_LABELS) == RDV_STATUSES
if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Rows encoded per chunk of the streamed CSV.
CHUNK_ROWS = 500
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cells(
    row: dict, zone: ZoneInfo
) -> tuple[date, time, time, int, str, str, str, str, str, str, str]:
    """The file's cells of one RDV of ``storage.rdv_lists.rdvs``."""
    start = datetime.fromtimestamp(row["starts_at"], zone)
    end = datetime.fromtimestamp(row["ends_at"], zone)
    names = ", ".join(f"{u['first_name']} {u['last_name']}" for u in row["usagers"])
    return (
        start.date(),
        start.time().replace(tzinfo=None),
        end.time().replace(tzinfo=None),
        (row["ends_at"] - row["starts_at"]) // 60,
        STATUS_LABELS.get(row["status"] or "unknown", row["status"] or ""),
        row["motif_name"] or "",
        row["service_name"] or "",
        row["lieu_name"] or "",
        row["agent_name"],
        names,
        row["uid"],
    )


def _csv_text(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(rows: Iterable[dict], zone: ZoneInfo) -> Iterator[bytes]:
    """The CSV file in pieces of CHUNK_ROWS rows, the BOM and headers first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADERS)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for n, row in enumerate(rows, 1):
        writer.writerow([_csv_text(v) for v in cells(row, zone)])
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _xlsx_text(sheet: WriteOnlyWorksheet, value: object) -> object:
    """openpyxl stores a string starting with "=" as a formula: keep it text."""
    if isinstance(value, str) and value.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        return cell
    return value


def xlsx(rows: Iterable[dict], zone: ZoneInfo) -> bytes:
    """The XLSX file: one sheet "RDV", the headers, one row per RDV."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("RDV")
    sheet.append(HEADERS)
    for row in rows:
        sheet.append([_xlsx_text(sheet, v) for v in cells(row, zone)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
