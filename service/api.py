"""The Blueprint every domain's views use, with a JSON parser hardened against hostile bodies."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from webargs.flaskparser import FlaskParser


class DebriefParser(FlaskParser):
    """webargs' parser, with nesting too deep for Python's JSON decoder counted as bad JSON."""

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            # A non-empty doc: webargs reads an empty one as "no body at all".
            raise json.JSONDecodeError("nested too deeply", "<body>", 0) from None


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest Blueprint using the hardened parser."""

    ARGUMENTS_PARSER = DebriefParser()
