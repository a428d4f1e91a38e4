"""What every page shares: plain error pages in both languages, security headers, accessibility."""

import pytest

from tests.browser import assert_accessible


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_an_unknown_page_is_a_plain_accessible_error_page(live, page, lang):
    page.get(f"{live.url}/r/not-a-link?lang={lang}")
    assert page.find_element("tag name", "html").get_attribute("lang") == lang
    heading = page.find_element("tag name", "h1").text
    assert heading == {"fr": "Ce lien n’est pas valide", "en": "This link is not valid"}[lang]
    assert "988" in page.page_source
    assert_accessible(page)


def test_pages_carry_the_security_headers(client):
    answer = client.get("/r/not-a-link", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    csp = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Traceback" not in answer.get_data(as_text=True)


def test_the_api_still_answers_problem_json(client):
    for path, accept in (("/v1/nothing-here", "text/html"), ("/nothing-here", "*/*"), ("/nothing-here", "application/json")):
        answer = client.get(path, headers={"Accept": accept})
        assert answer.status_code == 404
        assert answer.mimetype == "application/problem+json"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_stylesheet_is_served_from_this_host(client):
    answer = client.get("/static/debrief.css")
    assert answer.status_code == 200
    assert answer.mimetype == "text/css"
    answer.close()


def test_a_method_a_page_does_not_take_is_a_405_page_that_says_which_it_takes(client):
    answer = client.put("/r/not-a-link")
    assert answer.status_code == 405 and answer.mimetype == "text/html"
    assert set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_health_checks_answer_problem_json_to_a_method_they_do_not_take(client):
    answer = client.delete("/healthz")
    assert answer.status_code == 405 and answer.mimetype == "application/problem+json" and "GET" in answer.headers["Allow"]
