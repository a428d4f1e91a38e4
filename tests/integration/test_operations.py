"""Health, readiness, metrics, the OpenAPI document and the migrations."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openapi_spec_validator import validate
from sqlalchemy import create_engine, func, select, text

from service import db as service_db
from service.app import create_app
from service.db import POOL_SIZE, make_engine
from service.models import metadata
from service.openapi import generate
from service.sessions.service import PLANNING_LOCK
from tests.conftest import FakeClock, seed_agencies, settings, wipe
from tests.factories import incident_body, plan_reports, report_planned

ROOT = Path(__file__).resolve().parents[2]


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_checks_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["checks"] == {"database": "ok"}


def test_readyz_checks_redis_when_configured(database_url, redis_url):
    app = create_app({"database_url": database_url, "redis_url": redis_url})
    assert app.test_client().get("/readyz").get_json()["checks"] == {"database": "ok", "redis": "ok"}
    app.extensions["debrief"].close()


def test_readyz_stays_ready_when_redis_is_down_and_says_so(database_url):
    # Intake needs only the database: a Redis outage must not take the API out of its load balancer.
    app = create_app({"database_url": database_url, "redis_url": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}}
    app.extensions["debrief"].close()


def test_database_down_is_503_problem_not_500(tmp_path):
    app = create_app({"database_url": "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=1"})
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.content_type == "application/problem+json" and ready.headers["Retry-After"]
    assert ready.get_json()["checks"] == {"database": "unavailable"}
    response = client.get("/v1/incidents", headers={"Authorization": "Bearer dbk_anything"})
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    app.extensions["debrief"].close()


def test_metrics_count_requests_by_route_template(client, keys):
    created = report_planned(client, incident_body(), keys.auth("dispatch"))
    client.get(f"/v1/incidents/{created['id']}", headers=keys.auth("dispatch"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'debrief_http_requests_total{method="POST",route="/v1/incidents",status="201"} 1.0' in text
    assert 'route="/v1/incidents/<uuid:incident_id>"' in text
    assert created["id"] not in text
    assert "debrief_http_request_duration_seconds_bucket" in text


def test_metrics_without_a_token_answer_this_host_only(client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.5"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    for stranger in ("203.0.113.7", "10.0.0.1", "2001:db8::1", ""):
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": stranger})
        assert response.status_code == 404 and response.content_type == "application/problem+json", stranger
        assert "debrief_http" not in response.get_data(as_text=True)


def test_metrics_with_a_token_answer_its_bearer_only(database_url):
    app = create_app({"database_url": database_url, "metrics_token": "scrape-me-7f3a"})
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    for header in (None, "Bearer wrong", "Basic c2NyYXBlLW1lLTdmM2E=", "Bearer scrape-me-7f3"):
        for where in ({}, remote):
            response = client.get("/metrics", headers={"Authorization": header} if header else {}, environ_base=where)
            assert response.status_code == 401 and response.content_type == "application/problem+json", (header, where)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"}, environ_base=remote)
    assert response.status_code == 200 and "debrief_http_requests_total" in response.get_data(as_text=True)
    app.extensions["debrief"].close()


def test_unknown_methods_do_not_create_metric_series(client):
    for n in range(3):
        client.open("/healthz", method=f"X{n}RANDOM")
    text = client.get("/metrics").get_data(as_text=True)
    assert "RANDOM" not in text and 'method="OTHER"' in text


def test_committed_openapi_matches_the_code():
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == generate(), "openapi.yaml is stale: run `python -m service.openapi`"


def test_openapi_is_valid_and_served(client):
    document = yaml.safe_load(client.get("/openapi.yaml").get_data(as_text=True))
    validate(document)
    assert document["paths"]["/v1/incidents"]["post"]["x-roles"] == ["coordinator", "dispatch"]
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_docs_load_nothing_from_another_host_and_run_no_inline_script(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = dict(d.strip().split(" ", 1) for d in page.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert csp["style-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"] and "http" not in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "//" not in html  # no absolute or protocol-relative URL
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script is a file of this host
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + [re.search(r'data-spec-url="([^"]+)"', html).group(1)]
    assert len(assets) >= 5
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        answer.close()
    for name in ("LICENSE", "index.html", "..%2F__init__.py", "oauth2-redirect.html"):
        assert client.get(f"/docs/{name}").status_code == 404


@pytest.mark.parametrize("role", ["coordinator", "admin", None])
def test_participant_level_answers_are_never_cached(client, keys, role):
    created = report_planned(client, incident_body(), keys.auth("dispatch"))
    url = {"coordinator": f"/v1/incidents/{created['id']}/followups", "admin": "/v1/audit",
           None: "/v1/responses/not-a-token"}[role]
    response = client.get(url, headers=keys.auth(role) if role else {})
    assert response.status_code == (404 if role is None else 200)
    assert response.headers["Cache-Control"] == "no-store"
    if role is None:
        assert client.post(url, json={"action": "decline"}).headers["Cache-Control"] == "no-store"


def test_migrations_match_the_models(app):
    with app.extensions["debrief"].engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_postgresql_connections_wait_for_a_lock_five_seconds_at_most(postgres_url):
    app = create_app({"database_url": postgres_url})
    with app.extensions["debrief"].engine.connect() as conn:
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "5s"
    app.extensions["debrief"].close()


BACKEND_PID = text("SELECT pg_backend_pid()")


def test_a_pooled_connection_is_pinged_only_when_it_may_be_dead(postgres_url, monkeypatch):
    engine = make_engine(postgres_url)
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or ping(connection))
    with engine.connect() as conn:
        pid = conn.execute(BACKEND_PID).scalar()
    with engine.connect() as conn:
        assert conn.execute(BACKEND_PID).scalar() == pid
    assert pings == []  # used a moment ago: no round trip before the request's own

    # The server ends the connection (a restart, an administrator): the next request gets a new one, not an error.
    other = create_engine(postgres_url)
    with other.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with other.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar():
                break
        time.sleep(0.05)
    other.dispose()
    with engine.connect() as conn:
        assert conn.execute(BACKEND_PID).scalar() != pid
    assert len(pings) == 1

    # Idle for longer than a firewall or the server may keep it: pinged before use.
    monkeypatch.setattr(service_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 2
    engine.dispose()


def test_a_worker_busy_on_every_thread_keeps_its_connections_for_the_next_requests(postgres_url):
    # gunicorn's worker has POOL_SIZE threads, each request holding a connection: at its busiest
    # moments the pool keeps every one, rather than open a backend and close it again.
    engine = make_engine(postgres_url)
    together = threading.Barrier(POOL_SIZE, timeout=30)

    def request(_n: int) -> int:
        with engine.connect() as conn:
            pid = conn.execute(BACKEND_PID).scalar()
            together.wait()
            return pid

    with ThreadPoolExecutor(POOL_SIZE) as threads:
        first = set(threads.map(request, range(POOL_SIZE)))
        second = set(threads.map(request, range(POOL_SIZE)))
    assert len(first) == POOL_SIZE and second == first
    engine.dispose()


@pytest.fixture
def impatient(postgres_url):
    """The app on PostgreSQL, waiting 200 ms for a lock."""
    app = create_app(settings(postgres_url, lock_timeout_ms=200), clock=FakeClock())
    with app.extensions["debrief"].session_factory() as db:
        keys = seed_agencies(db)
    yield app, keys
    wipe(app.extensions["debrief"].engine)
    app.extensions["debrief"].close()


def test_a_lock_not_granted_in_time_is_a_503_problem(impatient, postgres_url):
    app, keys = impatient
    client = app.test_client()
    other = create_engine(postgres_url)
    with other.begin() as conn:
        conn.execute(text("LOCK TABLE agencies IN ACCESS EXCLUSIVE MODE"))
        response = client.patch("/v1/agencies/north", json={"name": "Renamed"}, headers=keys.auth("admin"))
        assert response.status_code == 503 and response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] and "retry" in response.get_json()["detail"]
    other.dispose()
    assert client.patch("/v1/agencies/north", json={"name": "Renamed"}, headers=keys.auth("admin")).status_code == 200


def test_intake_never_waits_for_a_planner_and_a_busy_pool_only_delays_the_plan(impatient, postgres_url):
    app, keys = impatient
    client = app.test_client()
    other = create_engine(postgres_url)
    with other.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(PLANNING_LOCK)))  # a planner that does not let go
        response = client.post("/v1/incidents", json=incident_body(), headers=keys.auth("dispatch"))
        assert response.status_code == 201 and response.get_json()["status"] == "received"
        # The planner cannot take its turn: the report waits, `received`, rather than be flagged.
        assert plan_reports(client) == 0
    other.dispose()
    assert client.get(response.headers["Location"], headers=keys.auth("dispatch")).get_json()["status"] == "received"
    assert plan_reports(client) == 1
    planned = client.get(response.headers["Location"], headers=keys.auth("dispatch")).get_json()
    assert planned["status"] == "needs_attention" and "planning_contention" not in str(planned["problems"])


def test_a_method_not_allowed_says_which_are_even_when_answered_as_a_page(client):
    response = client.open("/healthz", method="TRACE")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
