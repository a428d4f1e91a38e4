"""Every text a person reads is in both catalogs, translated, and compiled."""

from datetime import datetime, timezone

from service import i18n
from service.catalogs import problems


def test_the_catalogs_are_complete_and_compiled_from_the_code():
    assert problems() == []


def test_dates_are_written_the_canadian_way_in_each_language():
    moment = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)
    assert i18n.when(moment, "America/Toronto", "fr") == "lundi 7 décembre 2026 à 15\u00a0h"
    assert i18n.when(moment.replace(minute=30), "America/Toronto", "fr") == "lundi 7 décembre 2026 à 15\u00a0h\u00a030"
    assert i18n.when(moment, "America/Toronto", "en") == "Monday, December 7, 2026 at 3:00\u202fp.m."
    # Québec usage, no leading zero: "8 h", "8 h 05" (CLDR's fr_CA short format writes "08 h 05").
    morning = datetime(2026, 12, 7, 13, 5, tzinfo=timezone.utc)
    assert i18n.clock(morning, "America/Toronto", "fr") == "8\u00a0h\u00a005"
    assert i18n.clock(morning.replace(minute=0), "America/Toronto", "fr") == "8\u00a0h"
    assert i18n.clock(morning, "America/Toronto", "en") == "8:05\u202fa.m."


def test_a_language_is_fr_or_en():
    assert i18n.language("fr") == "fr"
    assert i18n.language("de") == "en"
    assert i18n.language(["de", "fr", "en"]) == "fr"
    assert i18n.other("fr") == "en"
