"""Calendar schemas: the feed's URLs, shown only when a feed secret is issued."""

import marshmallow as ma

ONLY_ONCE = (
    "Only a hash of the secret in this URL is stored, so the URL is shown only when it is issued: "
    "in the answer that creates the facilitator and in the answer that rotates the token. "
    "Rotating the token is the way to get a new URL; the old one then answers 404."
)


class CalendarUrlRead(ma.Schema):
    """The facilitator's iCalendar feed: its URL is its only credential (no API key)."""

    https = ma.fields.String(required=True, metadata={
        "description": "The feed over HTTP(S), built on PUBLIC_BASE_URL (https in production): paste it into "
                       "Google Calendar or Outlook (\"From web\" / \"Subscribe from web\").",
        "example": "https://debrief.example.org/v1/calendars/kq3x0lVJ9oYl6m1gW3yP3b0d5m2Kq0xv8Fh2d8s4ZqA.ics",
    })
    webcal = ma.fields.String(required=True, metadata={
        "description": "The same feed as a webcal:// link, which Apple Calendar and Outlook subscribe to in one click.",
        "example": "webcal://debrief.example.org/v1/calendars/kq3x0lVJ9oYl6m1gW3yP3b0d5m2Kq0xv8Fh2d8s4ZqA.ics",
    })


class CalendarTokenRead(ma.Schema):
    """A new feed token for a facilitator, as its URLs."""

    facilitator_id = ma.fields.Integer(required=True)
    calendar_url = ma.fields.Nested(CalendarUrlRead, required=True, metadata={"description": ONLY_ONCE})
