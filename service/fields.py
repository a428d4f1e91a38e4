"""marshmallow fields shared by the API schemas."""

from __future__ import annotations

import functools
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


class RecordList(ma.fields.List):
    """A list of records, `RecordList(Nested(schema))`, each loaded as `List(Nested(schema))` would load it.

    A record whose keys are the schema's own and whose every field passes its own `_deserialize` and
    validators is loaded by them alone: the schema's per-record work (error store, hooks, key
    mapping) would give the same dict and costs three times as much (an incident's personnel, the
    bulk of intake's load). Any other list goes through the schema, for its errors. Only a schema
    where the two are the same qualifies: no hooks, unknown keys refused, plain field names.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if type(value) is list and not kwargs.get("partial"):
            loaded = self._plain_records(value)
            if loaded is not None:
                return loaded
        return super()._deserialize(value, attr, data, **kwargs)

    def _plain_records(self, records: list[Any]) -> list[dict[str, Any]] | None:
        """The records as the schema would load them, or None when any might be refused."""
        plan = self._plan
        if plan is None:
            return None
        names, fields = plan
        loaded = []
        try:
            for record in records:
                if type(record) is not dict or not names.issuperset(record):
                    return None
                out = {}
                for name, field, validators in fields:
                    value = record.get(name, ma.missing)
                    if value is ma.missing:
                        if field.required:
                            return None
                        continue
                    if value is None:
                        if not field.allow_none:
                            return None
                        out[name] = None
                        continue
                    value = field._deserialize(value, name, record)
                    for validator in validators:
                        validator(value)
                    out[name] = value
                loaded.append(out)
        except ma.ValidationError:
            return None
        return loaded

    @functools.cached_property
    def _plan(self) -> _RecordPlan | None:
        """The schema's field names and (name, field, validators); None when the schema does not qualify."""
        return _record_plan(self.inner)


# A record schema's field names, and each field with its validators.
_RecordPlan = tuple[frozenset[str], tuple[tuple[str, ma.fields.Field, tuple[Any, ...]], ...]]


def _record_plan(inner: ma.fields.Field) -> _RecordPlan | None:
    if not (isinstance(inner, ma.fields.Nested) and not (inner.validators or inner.pre_load or inner.post_load)
            and inner.only is None and not inner.exclude and not inner.many and inner.unknown in (None, ma.RAISE)):
        return None
    schema = inner.schema
    # marshmallow keeps a schema's hooks (pre_load, validates, validates_schema, post_load) in _hooks only.
    if schema.unknown != ma.RAISE or any(schema._hooks.values()):
        return None
    fields = schema.load_fields
    for name, field in fields.items():
        if (field.data_key is not None or field.attribute is not None or field.load_default is not ma.missing
                or field.pre_load or field.post_load):
            return None
    return frozenset(fields), tuple((name, field, tuple(field.validators)) for name, field in fields.items())


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
