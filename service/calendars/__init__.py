"""Facilitator calendars: the iCalendar feed, its secret URL, and invitation attachments."""
