"""
The portal under its Content-Security-Policy in a real browser: no page an
owner opens makes Chromium report a violation (an inline script or style the
policy blocks), and what was inline before still looks as it should.
"""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/pricing/",
    "/docs/",
    "/app/",
    "/app/keys/",
    "/app/keys/new/",
    "/app/usage/",
    "/app/billing/",
    "/app/billing/ledger/",
    "/app/billing/payments/",
    "/app/members/",
    "/account/",
    "/account/email/",
]


@pytest.fixture
def owner_page(page, live_server_url, alice, channel):
    """Alice signed in (her email unverified, so the banner shows); the
    browser's reports of CSP violations, and script errors, are recorded in
    `page.problems`."""
    factories.usage_record(alice)
    factories.payment(alice)
    session = Client()
    session.force_login(alice.user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server_url,
            }
        ]
    )
    page.problems = []
    page.on(
        "console",
        lambda message: (
            page.problems.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: page.problems.append(f"pageerror: {error}"))
    return page


def test_no_portal_page_breaks_its_policy(owner_page):
    for path in PAGES:
        response = owner_page.goto(path)
        assert response.status == 200, path
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        expect(owner_page.locator("main")).to_be_visible()

    assert owner_page.problems == []


def test_a_new_key_and_its_copy_button_work_under_the_policy(owner_page):
    owner_page.goto("/app/keys/new/")
    owner_page.locator("input[name=name]").fill("ci")
    owner_page.get_by_role("button", name="Create key").click()

    expect(owner_page.get_by_test_id("new-secret")).to_contain_text("sk-sb-")
    screenshot(owner_page, "csp-key-created")
    assert owner_page.problems == []


def test_the_resend_form_stays_inside_its_sentence(owner_page):
    owner_page.goto("/app/")

    form = owner_page.locator("form.in-text")
    expect(form.get_by_role("button", name="Resend the email")).to_be_visible()
    assert form.evaluate("e => getComputedStyle(e).display") == "inline"
    assert owner_page.problems == []
