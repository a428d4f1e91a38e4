"""Pages in a real headless Chromium: Debian's chromium and chromium-driver, driven by Selenium 4.

The driver's path is given, so Selenium downloads nothing. axe-core (tests/js, pinned by its
lock file) checks every page against the WCAG 2.2 AA rules. `LiveServer` serves an app made by
the tests (its clock, its database) over real HTTP in this process, so a test can follow the
links of the emails the app sends.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import missing_service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = (360, 1280)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def start_chromium():
    """A headless Chromium with the flags this closed network needs; skips (fails in CI) without one."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        missing_service("Chromium and chromedriver (Debian packages chromium, chromium-driver)",
                        FileNotFoundError(f"{CHROMIUM} or {CHROMEDRIVER}"))
    if not AXE.exists():
        missing_service("axe-core (npm ci --prefix tests/js)", FileNotFoundError(str(AXE)))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-CA"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


class Browser:
    """One Chromium for the whole run (pages are independent: no cookie is kept between tests),
    started again if it went away, so that one lost browser fails one test, not every one after it."""

    def __init__(self) -> None:
        self.driver: Any = None

    def fresh(self) -> Any:
        """The running browser with no cookie and a desktop width (a new one if it no longer answers)."""
        from selenium.common.exceptions import WebDriverException
        from urllib3.exceptions import HTTPError

        if self.driver is not None:
            try:
                self.driver.delete_all_cookies()
                self.driver.set_window_size(1280, 900)
                return self.driver
            except (WebDriverException, HTTPError, OSError):
                self.quit()
        self.driver = start_chromium()
        return self.driver

    def quit(self) -> None:
        """End the browser, whatever state it is in."""
        driver, self.driver = self.driver, None
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001 - it may be gone already
                pass


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The run's Chromium."""
    holder = Browser()
    yield holder
    holder.quit()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """The browser, with no cookie and a desktop width."""
    yield browser.fresh()


def replaced(old: Any) -> Any:
    """An expected condition: the page that held `old` has been replaced.

    Selenium's staleness_of, but Chromium sometimes answers an element of the document being
    replaced with "Node with given id does not belong to the document" instead of "stale".
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver: Any) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return check


def follow_link(driver, by: str, selector: str, *, attempts: int = 3) -> None:
    """Click what leads to another page, and wait until that page has replaced this one.

    Chromium may invalidate an element between finding and clicking it (a resize's re-layout): the
    click is then tried again, unless the page already changed (the click went through).
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    for attempt in range(attempts):
        try:
            driver.find_element(by, selector).click()
            break
        except (StaleElementReferenceException, WebDriverException):
            if replaced(old)(driver):
                break  # the click went through: the page is being replaced
            if attempt == attempts - 1:
                raise
    WebDriverWait(driver, 30).until(replaced(old))


def axe_violations(driver) -> list[dict[str, Any]]:
    """The WCAG 2.2 AA violations axe-core finds on the page shown."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify([{id: 'axe-error', help: String(e)}])));",
        AXE_TAGS,
    )
    return json.loads(result)


PAGE_BUDGET = 150 * 1024  # bytes: the page and everything it loads


def assert_light_and_local(driver) -> None:
    """The page and everything it loaded weigh at most 150 KB, and nothing came from another host."""
    loaded = driver.execute_script(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".map(e => [e.name, e.decodedBodySize || e.encodedBodySize || 0]);")
    origin = driver.execute_script("return location.origin")
    foreign = [name for name, _size in loaded if not name.startswith(origin)]
    assert not foreign, f"{driver.current_url} loaded from another host: {foreign}"
    total = sum(size for _name, size in loaded)
    assert total <= PAGE_BUDGET, f"{driver.current_url} weighs {total} bytes with what it loads: {loaded}"


def assert_accessible(driver) -> None:
    """No axe-core violation at 360 px and at 1280 px wide, nothing wider than a phone at 360 px, within the page budget."""
    assert_light_and_local(driver)
    try:
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            violations = axe_violations(driver)
            assert not violations, f"{driver.current_url} at {width}px: " + "; ".join(
                f"{v['id']}: {v.get('help')} ({[n.get('target') for n in v.get('nodes', [])][:3]})" for v in violations)
            if width == 360:
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 0, f"{driver.current_url} scrolls sideways at 360px ({overflow}px)"
    finally:
        driver.set_window_size(1280, 900)


def screenshot(driver, name: str, *, width: int = 360) -> Path | None:
    """With UPDATE_SCREENSHOTS=1, save the page shown as docs/screenshots/NAME.png at a phone's width (the README's).

    Otherwise nothing is written: a test run must not change the files of the checkout.
    """
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 2400))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path


@dataclass
class LiveServer:
    """An app served over HTTP on 127.0.0.1 from a thread of this process."""

    app: Any
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(app, port: int) -> LiveServer:
    """Serve `app` on `port` (the port its PUBLIC_BASE_URL names)."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    return LiveServer(app, server, thread)


@pytest.fixture
def live(sqlite_url, clock, sink) -> Iterator[LiveServer]:
    """The app on SQLite with the test's clock, served over HTTP, its emails going to the SMTP sink."""
    from service.app import create_app
    from tests.conftest import wipe
    from tests.receivers import free_port

    port = free_port()
    app = create_app({"database_url": sqlite_url, "public_base_url": f"http://127.0.0.1:{port}",
                      "smtp_url": sink.url}, clock=clock)
    server = serve(app, port)
    yield server
    server.stop()
    services = app.extensions["debrief"]
    wipe(services.engine)
    services.close()
