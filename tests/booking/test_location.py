"""An RDV's LOCATION (the feed's too) for each location type: a home visit says the usager's
structured postcode and city, and nothing of a free-text address."""

from __future__ import annotations

from booking.events import location_text

LIEU = {"name": "Mairie annexe", "address": "1 place de la Mairie, 75011 Paris"}


def test_each_location_type() -> None:
    assert (
        location_text("public_office", LIEU) == "Mairie annexe, 1 place de la Mairie, 75011 Paris"
    )
    assert location_text("phone", LIEU) == "Par téléphone"
    assert location_text("visio", None) == "Visioconférence"
    assert location_text("home", None, "75011", "Paris") == "À domicile (75011 Paris)"
    assert location_text("home", None, None, " Lyon ") == "À domicile (Lyon)"
    assert location_text("home", None) == "À domicile"
