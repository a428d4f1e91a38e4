"""PostgreSQL refuses to double-book a facilitator even when the application does not check."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.sessions.models import Assignment
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster


@pytest.fixture
def database_url(postgres_url):
    """PostgreSQL only: SQLite serializes writers instead, and has no exclusion constraints."""
    return postgres_url


def test_overlapping_active_assignments_are_refused(app, client, keys):
    add_roster(client, keys)
    incident = report_planned(client, incident_body(), keys.auth("dispatch"))
    assert incident["status"] == "planned"
    with app.extensions["debrief"].session_factory() as db:
        booked = db.scalars(select(Assignment).where(Assignment.active).limit(1)).one()
        overlapping = Assignment(
            session_id=booked.session_id, facilitator_id=booked.facilitator_id, active=True, group_session=True,
            starts_at=booked.starts_at + timedelta(minutes=30), ends_at=booked.ends_at + timedelta(minutes=30),
        )
        db.add(overlapping)
        with pytest.raises(IntegrityError, match="ex_assignments_no_overlap"):
            db.commit()
        db.rollback()
        released = Assignment(
            session_id=booked.session_id, facilitator_id=booked.facilitator_id, active=False, group_session=True,
            starts_at=booked.starts_at, ends_at=booked.ends_at,
        )
        db.add(released)
        db.commit()  # an inactive (released) assignment does not count
