"""The Blueprint every domain's views use, with a JSON parser hardened against hostile bodies."""

from __future__ import annotations

import json
import math
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request


class _Refused(ValueError):
    """What strict_json refuses, in words fit for the client."""


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 is read as infinity
        raise _Refused("a number too large for a double")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Readers differ on duplicate names (the first wins, or the last): refuse the ambiguity (RFC 7493).
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused("a name appears twice in one object")
    return obj


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def strict_json(text: str) -> Any:
    """Parse I-JSON (RFC 7493): no NaN or Infinity, no number beyond a double, no name twice in an
    object, no lone surrogate in a string.

    Every refusal is a JSONDecodeError, which the API answers as a 400 "not valid JSON".
    """
    try:
        value = json.loads(text, parse_float=_real, parse_constant=_constant, object_pairs_hook=_unique_keys)
        # UTF-8 cannot carry a surrogate, only a \u escape can: most bodies need no walk. Such a string
        # must go no further (PostgreSQL, mail and logs cannot encode it).
        if "\\u" in text and _has_lone_surrogate(value):
            raise _Refused("a string holds a lone surrogate (\\ud800-\\udfff)")
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except _Refused as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None
    except ValueError:
        # Python's own limit on converting digits to an int (4,300), against quadratic-time conversions.
        raise json.JSONDecodeError("an integer of too many digits", text, 0) from None
    return value


class DebriefParser(FlaskParser):
    """webargs' parser, reading bodies as strict JSON; a refusal says why."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            text = req.get_data(cache=True).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("its bytes are not UTF-8", "<body>", exc.start) from None
        # An empty body raises with an empty doc, which webargs reads as "no body at all".
        return strict_json(text)

    def _handle_invalid_json_error(self, error: Any, req: flask.Request, *args: Any, **kwargs: Any) -> Any:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "its bytes are not UTF-8"
        abort(400, exc=error, messages={"json": ["Invalid JSON body."]}, reason=reason)


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest Blueprint using the hardened parser."""

    ARGUMENTS_PARSER = DebriefParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's, with a schema class made an instance once: webargs would make one per request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
