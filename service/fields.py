"""marshmallow fields shared by the API schemas."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import marshmallow as ma

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$")
# Control characters (PostgreSQL refuses NUL; logs, mail headers and calendars dislike the rest),
# surrogates, format characters (bidi overrides such as U+202E reverse what a reader sees; zero-width
# ones hide text) and the line and paragraph separators (U+2028, U+2029: line breaks to JavaScript).
_UNPRINTABLE = frozenset({"Cc", "Cs", "Cf", "Zl", "Zp"})


def unprintable(text: str) -> bool:
    """Whether a text holds a control, format, surrogate or line/paragraph separator character."""
    return not (text.isascii() and text.isprintable()) and any(unicodedata.category(ch) in _UNPRINTABLE for ch in text)


class FullMatch(ma.validate.Regexp):
    """Regexp that must match the whole value: `$` alone lets a trailing newline through."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class Text(ma.fields.String):
    """A printable string: no control or format character, no line or paragraph separator."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if unprintable(text):
            raise ma.ValidationError("Must not contain control, format or line-separator characters.")
        if text != text.strip():
            raise ma.ValidationError("Must not start or end with white space.")
        return text


class EmailAddress(ma.fields.Email):
    """An email address without control or format characters (its quoted form would allow them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        address = super()._deserialize(value, attr, data, **kwargs)
        if unprintable(address):
            raise ma.ValidationError("Must not contain control, format or line-separator characters.")
        return address


def text(*, max_length: int, min_length: int = 1, **kwargs: Any) -> Text:
    """A bounded `Text` field."""
    return Text(validate=ma.validate.Length(min=min_length, max=max_length), **kwargs)


def identifier(**kwargs: Any) -> Text:
    """An external identifier: 1–64 visible ASCII characters."""
    return Text(
        validate=[ma.validate.Length(min=1, max=64), FullMatch(_IDENTIFIER, error="Not a valid identifier.")],
        **kwargs,
    )


def choice(values: tuple[str, ...], **kwargs: Any) -> ma.fields.String:
    """A string from a fixed vocabulary."""
    return ma.fields.String(validate=ma.validate.OneOf(values), **kwargs)


class TimeZoneName(ma.fields.String):
    """An IANA time zone name such as America/Toronto."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        if len(name) > 64 or name not in _zone_names():
            raise ma.ValidationError("Not a known IANA time zone.")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ma.ValidationError("Not a known IANA time zone.") from exc
        return name


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES  # noqa: PLW0603 - computed once, read-only afterwards
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


class PageArgs(ma.Schema):
    """Cursor and size of a newest-first list (service.pagination.newest_first)."""

    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class PatchSchema(ma.Schema):
    """A partial update: at least one field must be given."""

    @ma.validates_schema
    def _something_to_change(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Give at least one field to change.")


EARLIEST_YEAR, LATEST_YEAR = 2000, 2099


def in_service_range(instant: datetime) -> bool:
    """Whether an aware instant lies in the years the service deals with (arithmetic stays safe)."""
    return EARLIEST_YEAR <= instant.astimezone(timezone.utc).year <= LATEST_YEAR


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false, and nothing else (not 1, 0, "yes")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Instant(ma.fields.AwareDateTime):
    """An aware date-time, converted to UTC, between 2000 and 2099."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        instant = super()._deserialize(value, attr, data, **kwargs)
        try:
            if not in_service_range(instant):
                raise ma.ValidationError(f"Must lie between {EARLIEST_YEAR} and {LATEST_YEAR}.")
            return instant.astimezone(timezone.utc)
        except OverflowError:
            raise ma.ValidationError(f"Must lie between {EARLIEST_YEAR} and {LATEST_YEAR}.") from None


AGENCY_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
