"""/docs in a real Chromium: Swagger UI renders the spec under a CSP that allows only this host."""

# Recorded before any script of the page runs (CDP's scripts are not bound by the page's CSP).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", e => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def test_docs_render_the_spec_with_nothing_from_another_host(live, page):
    page.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    page.execute_cdp_cmd("Network.enable", {})
    try:
        page.get(f"{live.url}/docs")
        page.implicitly_wait(10)
        title = page.find_element("css selector", ".swagger-ui .info .title").text
        assert title.startswith("Debrief")
        assert page.find_elements("css selector", ".opblock-summary-path[data-path='/v1/incidents']")
        resources = page.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        assert resources and [url for url in resources if not url.startswith((f"{live.url}/", "data:"))] == []
        assert page.execute_script("return window.__violations") == []
    finally:
        page.implicitly_wait(0)
        page.execute_cdp_cmd("Network.disable", {})
