"""Identical reports racing each other produce one incident (the database decides)."""

import threading

from sqlalchemy import func, select

from service.incidents.models import Incident
from tests.factories import incident_body


def race(app, keys, bodies, headers=None):
    barrier = threading.Barrier(len(bodies))
    results = [None] * len(bodies)

    def send(index, body):
        client = app.test_client()
        barrier.wait()
        response = client.post("/v1/incidents", json=body, headers={**keys.auth("dispatch"), **(headers or {})})
        results[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def incidents(app):
    session = app.extensions["debrief"].session_factory()
    try:
        return session.scalar(select(func.count()).select_from(Incident))
    finally:
        session.close()


def test_identical_reports_racing_make_one_incident(app, keys):
    results = race(app, keys, [incident_body() for _ in range(8)])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 7 + [201]
    assert len({body["id"] for _, body in results}) == 1
    assert incidents(app) == 1


def test_conflicting_reports_racing_make_one_incident_and_409s(app, keys):
    results = race(app, keys, [incident_body(severity=s) for s in (1, 2, 3, 4)])
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 409, 409, 409]
    assert incidents(app) == 1


def test_same_idempotency_key_racing_makes_one_incident(app, keys):
    results = race(app, keys, [incident_body() for _ in range(6)], headers={"Idempotency-Key": "k-1"})
    assert {status for status, _ in results} <= {200, 201}
    assert len({body["id"] for _, body in results}) == 1
    assert incidents(app) == 1
