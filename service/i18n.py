"""Words and dates for people: the gettext catalogs (fr, en) and Babel's CLDR formats.

Pages get their words through Flask-Babel (the request's locale); messages, feeds and
`.ics` files are composed outside any request (by the planner, a job), so pure code asks
`translator(lang)` for the same catalogs by language.
"""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.support import Translations

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "en"
# Canadian usage: "lundi 7 décembre 2026 à 15 h", "Monday, December 7, 2026 at 3:00 p.m."
LOCALES = {"fr": "fr_CA", "en": "en_CA"}
TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DOMAIN = "messages"


def language(code: str | Iterable[str] | None) -> str:
    """fr or en: a person's language, or the first of a facilitator's languages that is fr or en."""
    if code is None:
        return DEFAULT_LANGUAGE
    if isinstance(code, str):
        return code if code in LANGUAGES else DEFAULT_LANGUAGE
    return next((c for c in code if c in LANGUAGES), DEFAULT_LANGUAGE)


def other(lang: str) -> str:
    """The other of the two languages (for a page's language switch)."""
    return "en" if lang == "fr" else "fr"


@lru_cache(maxsize=None)
def translator(lang: str) -> Translations:
    """The catalog of one language (gettext, ngettext, pgettext)."""
    return Translations.load(str(TRANSLATIONS_DIR), [LOCALES[language(lang)]], domain=DOMAIN)


def translate(lang: str, message: str, **values: Any) -> str:
    """One message in a language, with its %(name)s placeholders filled."""
    text = translator(lang).gettext(message)
    return text % values if values else text


def translate_plural(lang: str, singular: str, plural: str, count: int, **values: Any) -> str:
    """A message that depends on a number, in a language; %(num)d is the number."""
    return translator(lang).ngettext(singular, plural, count) % {"num": count, **values}


def N_(message: str) -> str:
    """Mark a message for the catalogs where it is defined; it is translated where it is used."""
    return message


def _local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def clock(moment: datetime, zone: str, lang: str) -> str:
    """A time of day in the zone: "15 h", "8 h 30", "3:30 p.m."."""
    local = _local(moment, zone)
    return time_of_day(local.hour, local.minute, lang)


@lru_cache(maxsize=4096)
def time_of_day(hour: int, minute: int, lang: str) -> str:
    """A wall-clock time in a language (cached: a feed shows thousands, and Babel takes about 10 µs each)."""
    if language(lang) == "fr":
        # Québec usage (OQLF): "8 h", "8 h 30". CLDR's short format for fr_CA writes "08 h 00" and "08 h 30".
        # No-break spaces: a time never breaks across two lines ("8 / h").
        pattern = "H'\u00a0h'" if minute == 0 else "H'\u00a0h\u00a0'mm"
        return format_time(time(hour, minute), pattern, locale=LOCALES["fr"])
    return format_time(time(hour, minute), "short", locale=LOCALES[language(lang)])


def day(moment: datetime, zone: str, lang: str) -> str:
    """A date in full words in the zone: "lundi 7 décembre 2026"."""
    return format_date(_local(moment, zone).date(), "full", locale=LOCALES[language(lang)])


def short_day(value: date, lang: str) -> str:
    """A calendar date, short: "Dec 12, 2026", "12 déc. 2026"."""
    return format_date(value, "medium", locale=LOCALES[language(lang)])


def when(moment: datetime, zone: str, lang: str) -> str:
    """A date and time in words in the zone: "lundi 7 décembre 2026 à 15 h"."""
    return translate(lang, "%(day)s at %(time)s", day=day(moment, zone, lang), time=clock(moment, zone, lang))
