"""The channels on their own: phone numbers, GSM-7, templates, and real
sends to an SMTP server (aiosmtpd) and an SMS provider on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources

import icalendar
import pytest

from notifications import email, gsm, ics, phones, render, sms
from notifications.outcome import FAILED, RETRY, SENT
from tests.conftest import free_port
from tests.notifications.fakes import SMS_TOKEN, SmsProvider, SmtpServer

START = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # 10:30 in Paris


def test_numbers_are_e164_and_only_mobiles_get_sms() -> None:
    assert phones.e164("06 12 34 56 78") == "+33612345678"
    assert phones.e164("+33 6 12 34 56 78") == "+33612345678"
    assert phones.mobile_e164("0612345678") == "+33612345678"
    assert phones.e164("01 23 45 67 89") == "+33123456789"
    assert phones.mobile_e164("01 23 45 67 89") is None  # a landline
    assert phones.mobile_e164("0692 12 34 56", phones.region_of_zone("974")) == "+262692123456"
    assert phones.e164("12") is None
    assert phones.e164("not a number") is None
    assert phones.masked("+33612345678") == "+33*******78"


def test_gsm7_transliteration_and_segments() -> None:
    text = gsm.transliterate("Rendez-vous à Besançon : être là l’après-midi « œuvre » – ok…")
    assert text == 'Rendez-vous à Besancon : etre là l\'après-midi " oeuvre " - ok...'
    assert all(c in gsm.BASIC or c in gsm.EXTENSION for c in text)
    assert gsm.transliterate("漢") == "?"
    assert gsm.segments("a" * 160) == 1
    assert gsm.segments("a" * 161) == 2
    assert gsm.segments("a" * 306) == 2
    assert gsm.segments("a" * 307) == 3
    assert gsm.segments("€" * 80) == 1 and gsm.segments("€" * 81) == 2  # two septets each


def test_templates_ship_with_the_package() -> None:
    folder = resources.files("notifications") / "templates"
    names = {p.name for p in folder.iterdir()}
    assert {"subject.txt", "usager_email.txt", "usager_email.html", "usager_sms.txt"} <= names
    assert {"agent_email.txt", "agent_email.html", "_layout.html"} <= names


def _content(**kw: object) -> render.Content:
    values: dict = {
        "audience": "usager",
        "kind": "created",
        "motif": "Suivi PMI",
        "starts_at": START,
        "zone": "Europe/Paris",
        "location_type": "public_office",
        "lieu_name": "Centre social",
        "lieu_address": "1 rue de la Paix, 75002 Paris",
        "instructions": "Apportez le carnet <de santé>.",
        "organisation": {"name": "Mairie", "phone": "01 23 45 67 89"},
        "link": "https://rdv.example.fr/r/12/ABCD1234",
    }
    values.update(kw)
    return render.Content(**values)


def test_usager_texts_say_what_where_and_how_to_cancel() -> None:
    subject, text, html = render.email(_content())
    assert subject == "Votre RDV du lundi 7 décembre 2026 à 10h30 est confirmé"
    assert "Centre social, 1 rue de la Paix, 75002 Paris" in text
    assert "Apportez le carnet <de santé>." in text
    assert "Apportez le carnet &lt;de santé&gt;." in html  # escaped in HTML
    assert "Infos et annulation : https://rdv.example.fr/r/12/ABCD1234" in text
    assert '<a href="https://rdv.example.fr/r/12/ABCD1234">Infos et annulation</a>' in html
    text = render.sms(_content(location_type="home", kind="reminder"))
    assert text.startswith("Rappel RDV Suivi PMI le lun. 7/12 vers 10h30.\nA domicile.")
    assert "Infos et annulation : https://rdv.example.fr/r/12/ABCD1234 / 01 23 45 67 89" in text
    assert gsm.segments(text) == 1
    assert "par téléphone" in render.email(_content(location_type="phone"))[1].lower()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _settings(port: int) -> email.SmtpSettings:
    return email.SmtpSettings(host="127.0.0.1", port=port, sender="rdv@mairie.example.fr")


def _calendar() -> email.Calendar:
    event = ics.IcsEvent(
        uid="0a1b@calserver",
        sequence=3,
        starts_at=START,
        ends_at=START.replace(hour=10),
        summary="RDV Suivi PMI",
        location="Centre social",
        description="Infos",
        cancelled=False,
        organizer="rdv@mairie.example.fr",
    )
    return email.Calendar(ics.build(event, "PUBLISH"), "PUBLISH")


async def test_an_email_reaches_the_smtp_server_with_its_three_parts(smtp: SmtpServer) -> None:
    settings = _settings(smtp.port)
    subject, text, html = render.email(_content())
    message = email.compose(settings, "lea@example.org", subject, text, html, _calendar())
    outcome = await email.send(settings, message, "lea@example.org")
    assert outcome.status == SENT and outcome.provider_id == message["Message-ID"]
    (got,) = smtp.mailbox.to("lea@example.org")
    assert got["Subject"] == subject and got["From"] == "rdv@mairie.example.fr"
    assert got["Auto-Submitted"] == "auto-generated"
    assert got.get_content_type() == "multipart/mixed"
    parts = {p.get_content_type(): p for p in got.walk()}
    assert parts["text/plain"].get_content().replace("\r\n", "\n") == text
    assert parts["text/html"].get_content().replace("\r\n", "\n") == html
    calendar_part = parts["text/calendar"]
    assert calendar_part.get_param("method") == "PUBLISH"
    assert calendar_part["Content-Transfer-Encoding"] == "base64"
    attachment = parts["application/ics"]
    assert attachment.get_filename() == "rdv.ics"
    raw = calendar_part.get_payload(decode=True)
    assert raw == attachment.get_payload(decode=True)
    assert base64.b64decode(calendar_part.get_payload()) == raw
    parsed = icalendar.Calendar.from_ical(raw)
    assert parsed["METHOD"] == "PUBLISH"
    (vevent,) = parsed.walk("VEVENT")
    assert (str(vevent["UID"]), int(vevent["SEQUENCE"])) == ("0a1b@calserver", 3)
    assert vevent.decoded("DTSTART") == START


async def test_an_email_goes_to_its_one_recipient_whatever_its_header(smtp: SmtpServer) -> None:
    settings = _settings(smtp.port)
    message = email.compose(settings, "one@example.org, two@example.org", "s", "t", "<p>t</p>")
    assert (await email.send(settings, message, "one@example.org")).status == SENT
    assert ["two@example.org"] not in smtp.mailbox.recipients
    assert smtp.mailbox.recipients[-1] == ["one@example.org"]


async def test_smtp_answers_decide_retry_or_not(smtp: SmtpServer) -> None:
    settings = _settings(smtp.port)
    message = email.compose(settings, "x@example.org", "s", "t", "<p>t</p>")
    smtp.mailbox.reply = "451 4.3.0 try later"
    try:
        temporary = await email.send(settings, message, "x@example.org")
        smtp.mailbox.reply = "554 5.7.1 x@example.org refused"
        permanent = await email.send(settings, message, "x@example.org")
    finally:
        smtp.mailbox.reply = None
    assert (temporary.status, temporary.error) == (RETRY, "SMTP 451")
    assert (permanent.status, permanent.error) == (FAILED, "SMTP 554")
    down = await email.send(_settings(free_port()), message, "x@example.org")
    assert down.status == RETRY and "x@example.org" not in (down.error or "")


@pytest.fixture(scope="module")
def provider() -> Iterator[SmsProvider]:
    fake = SmsProvider().start()
    yield fake
    fake.stop()


async def test_the_json_sms_provider(provider: SmsProvider) -> None:
    settings = sms.SmsSettings("json_http", provider.url, SMS_TOKEN, "MAIRIE", timeout_s=0.3)
    client = sms.provider(settings)
    assert client is not None
    try:
        outcome = await client.send("+33612345678", "RDV le lun. 7/12")
        assert outcome.status == SENT and outcome.provider_id == "sms-1"
        assert provider.to("+33612345678") == [
            {"to": "+33612345678", "text": "RDV le lun. 7/12", "sender": "MAIRIE"}
        ]
        provider.status = 503
        assert (await client.send("+33612345678", "x")).status == RETRY
        provider.status = 400
        assert (await client.send("+33612345678", "x")).status == FAILED
        provider.status, provider.delay_s = 200, 0.8
        assert (await client.send("+33612345678", "x")).status == RETRY  # timeout
    finally:
        provider.status, provider.delay_s = 200, 0.0
        await client.close()
    wrong_token = sms.provider(sms.SmsSettings("json_http", provider.url, "nope"))
    assert wrong_token is not None
    assert (await wrong_token.send("+33612345678", "x")).status == FAILED
    await wrong_token.close()
    assert sms.provider(sms.SmsSettings()) is None


async def test_the_sms_provider_keeps_its_connection(provider: SmsProvider) -> None:
    """The worker keeps one provider for its life: its sends, round after
    round, go on one kept-alive connection, not a new one each."""
    settings = sms.SmsSettings("json_http", provider.url, SMS_TOKEN, "MAIRIE")
    client = sms.provider(settings)
    assert client is not None
    try:
        for _ in range(3):
            assert (await client.send("+33611111111", "RDV")).status == SENT
    finally:
        await client.close()
    assert len(set(provider.peers[-3:])) == 1


async def test_a_2xx_sms_answer_that_is_not_json_is_sent(provider: SmsProvider) -> None:
    settings = sms.SmsSettings("json_http", provider.url, SMS_TOKEN, "MAIRIE")
    client = sms.provider(settings)
    assert client is not None
    provider.plain = "OK"
    try:
        outcome = await client.send("+33698765432", "RDV")
    finally:
        provider.plain = None
        await client.close()
    # Accepted: retrying would send the SMS again.
    assert (outcome.status, outcome.provider_id) == (SENT, None)
    assert len(provider.to("+33698765432")) == 1


def test_sms_segments_never_split_an_extension_character() -> None:
    # 152 septets, then "€" (escape + character) cannot end the first segment.
    assert gsm.segments("a" * 152 + "€" + "a" * 152) == 3
    assert gsm.segments("a" * 151 + "€" + "a" * 153) == 2
    assert gsm.transliterate("æÆ") == "æÆ"  # GSM-7 basic: kept as is


def test_a_long_sms_is_shortened_then_refused() -> None:
    long_place = _content(
        lieu_name="Centre social",
        lieu_address="12 rue " + "de la très longue avenue " * 8,
        organisation={"name": "Mairie", "phone": "01 23 45 67 89"},
    )
    full = render.sms(long_place, max_segments=9)
    assert full is not None and "longue avenue" in full and gsm.segments(full) > 1
    short = render.sms(long_place, max_segments=1)
    assert short is not None and "Centre social" in short and "longue" not in short
    assert gsm.segments(short) == 1
    huge = _content(motif="M" * 39, link="https://rdv.example.fr/r/1/" + "X" * 400)
    assert render.sms(huge, max_segments=2) is None
