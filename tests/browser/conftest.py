"""
Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium, never
a Playwright download) against a live Switchboard, uvicorn serving the whole
ASGI app in a thread of the test process (tests/conftest.py relay_server).
Because the server runs in this process, Django's locmem email outbox
(django.core.mail.outbox, set up by pytest-django) receives its emails.

Mark browser test modules `pytestmark = pytest.mark.browser`. Screenshots go
to test-artifacts/screenshots/<name>.png.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail as django_mail
from django.core.cache import cache
from django.db import connections
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
# Bound every wait: a missing element fails the test instead of hanging it.
TIMEOUT_MS = 15_000


@pytest.fixture
def browser(monkeypatch):
    """
    A headless Chromium for one test. Playwright's sync API keeps an asyncio
    loop running in this thread while it is open, which Django takes for an
    async context and where it refuses ORM calls; the test's own ORM calls
    are plain sync code, so the guard is lifted, for this test only (each
    test starts and stops its own Playwright, so the rest of the suite keeps
    the guard and a thread free of Playwright's loop).
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def live_server_url(relay_server, transactional_db, settings, monkeypatch) -> str:
    """The base URL of a live Switchboard serving this test's data."""
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "1.00"
    # The pages' sync views run in the server's worker thread: let that
    # thread's connection close after each request rather than outlive the
    # test database (which then cannot be dropped at the end of the run).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    cache.clear()  # throttles count per IP, and every browser is 127.0.0.1
    yield relay_server.base_url
    cache.clear()


@pytest.fixture
def page(browser, live_server_url):
    context = browser.new_context(base_url=live_server_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class Mailbox:
    """The emails the live server sent during this test."""

    @property
    def messages(self) -> list:
        return list(django_mail.outbox)

    def last_to(self, address: str):
        found = [m for m in django_mail.outbox if address in m.to]
        assert found, f"no email to {address}; sent: {[m.to for m in self.messages]}"
        return found[-1]

    def link(self, address: str, path_pattern: str) -> str:
        """The site path of the first link in the last email to `address`
        whose path matches `path_pattern` (a regular expression)."""
        body = self.last_to(address).body
        match = re.search(rf"https?://[^/\s]+({path_pattern})", body)
        assert match, body
        return match.group(1)


@pytest.fixture
def mail(mailoutbox) -> Mailbox:
    return Mailbox()


@pytest.fixture
def csp_violations(page) -> list[str]:
    """Console messages in which Chromium reports a blocked resource."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return found
