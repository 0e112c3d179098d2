"""Browser tests: Playwright drives Debian's Chromium against a real Daphne server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import start_server
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, wait_until_servers_are_quiet

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="no Chromium on PATH (apt-get install chromium)")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def live_server_ws(django_db_setup, django_db_blocker, artifacts_dir):
    """One Daphne process for the session, on the test database."""
    with django_db_blocker.unblock():
        server = start_server(artifacts_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(django_db_setup):
    """Chromium for the session.

    It depends on `django_db_setup` so the test database exists before Playwright starts
    its event loop in this thread; Django refuses to create it beside a running loop,
    which broke `pytest tests/browser` run on its own.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, transactional_db, monkeypatch):
    """A fresh browser context per test.

    Playwright's sync API keeps an event loop in this thread, which makes Django refuse
    ORM calls from the test body; the test body never shares a connection with the
    server, so allowing them here is safe.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(autouse=True)
def quiet_servers_before_flush(transactional_db):
    """Set up after the test database, so torn down before it is flushed."""
    yield
    wait_until_servers_are_quiet()


@pytest.fixture
def login(live_server_ws):
    """Return a function that signs a user in through the real login form."""

    def sign_in(page, username: str, password: str) -> None:
        page.goto(f"{live_server_ws.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server_ws.url}/")

    return sign_in
