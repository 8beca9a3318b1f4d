"""The redaction filter on a real handler: exception texts, tracebacks and
exceptions logged as messages are reduced to their type."""

from __future__ import annotations

import io
import logging

from plugins.log_redaction import RedactExceptions


def _written(record_maker, name: str = "test.redaction") -> str:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactExceptions())
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        record_maker(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_exception_texts_and_tracebacks_are_dropped() -> None:
    def log(logger: logging.Logger) -> None:
        try:
            raise ValueError("ATTENDEE;CN=Camille Durand:mailto:c@example.org")
        except ValueError as e:
            logger.error("Bad PUT: %s", e, exc_info=True)
            logger.error(e)
        logger.error(KeyError("Mars/Olympus_Mons"))

    written = _written(log)
    assert "Camille" not in written and "Olympus" not in written
    assert "Traceback" not in written
    assert written.splitlines() == ["Bad PUT: <ValueError>", "<ValueError>", "<KeyError>"]


def test_radicale_lines_name_the_collection_not_the_clients_href() -> None:
    def log(logger: logging.Logger) -> None:
        logger.warning("Bad PUT request on %r: %s", "/alice/rdv/camille-durand.ics", "x")
        logger.warning("Bad PROPFIND request on %r", "/alice/rdv/")

    lines = _written(log, "radicale.test-redaction").splitlines()
    assert lines == [
        "Bad PUT request on '/alice/rdv/…': x",
        "Bad PROPFIND request on '/alice/rdv/'",
    ]
