"""
Destructive actions ask before they post (issue 16): revoking a key in the
portal and in the console opens the browser's confirmation dialog;
dismissing it leaves the key active, accepting it revokes the key. Without
JavaScript the portal's own confirmation page still stands.
"""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import ApiKey
from tests import factories

pytestmark = pytest.mark.browser

QUESTION = "Programs using it are refused within seconds. This cannot be undone."


def session_cookie(live_server_url: str, user) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server_url,
    }


class Dialogs:
    """Answers the page's dialogs as told (`accept`) and keeps their text."""

    def __init__(self, page):
        self.accept = False
        self.messages: list[str] = []
        page.on("dialog", self._answer)

    def _answer(self, dialog) -> None:
        self.messages.append(dialog.message)
        if self.accept and dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()


def is_active(key: ApiKey) -> bool:
    key.refresh_from_db()
    return key.revoked_at is None


def test_revoking_a_key_in_the_portal_asks_first(page, live_server_url, alice):
    key = alice.tenant.api_keys.get()
    page.context.add_cookies([session_cookie(live_server_url, alice.user)])
    dialogs = Dialogs(page)
    page.goto(f"/app/keys/{key.pk}/revoke/")
    revoke = page.get_by_role("button", name="Revoke the key")

    revoke.click()

    assert dialogs.messages == [f"Revoke the key “{key.name}”? {QUESTION}"]
    expect(revoke).to_be_visible()  # nothing was posted
    assert is_active(key)

    dialogs.accept = True
    revoke.click()

    expect(page.locator(".messages")).to_contain_text(f"Revoked “{key.name}”")
    assert len(dialogs.messages) == 2
    assert not is_active(key)


def test_revoking_a_key_in_the_console_asks_first(
    page, live_server_url, alice, settings
):
    settings.SWITCHBOARD_STAFF_2FA = False
    key = alice.tenant.api_keys.get()
    staff = factories.staff("sam@switchboard.test", superuser=True)
    page.context.add_cookies([session_cookie(live_server_url, staff)])
    dialogs = Dialogs(page)
    page.goto(reverse("console:tenant", args=[alice.tenant.pk]))
    row = page.locator("#keys tbody tr", has_text=key.prefix)
    revoke = row.get_by_role("button", name="Revoke")

    # An empty reason is refused by the browser before anything is asked.
    revoke.click()
    assert dialogs.messages == []

    row.get_by_label(f"Reason for revoking {key.prefix}").fill("Leaked in a repo")
    revoke.click()

    assert dialogs.messages == [
        f"Revoke the key {key.prefix}… (“{key.name}”)? {QUESTION}"
    ]
    expect(revoke).to_be_visible()
    assert is_active(key)

    dialogs.accept = True
    revoke.click()

    expect(page.get_by_text(f"Key {key.prefix}… is revoked.")).to_be_visible()
    assert not is_active(key)


def test_without_javascript_the_portals_confirmation_page_stands(
    browser, live_server_url, alice
):
    key = alice.tenant.api_keys.get()
    context = browser.new_context(base_url=live_server_url, java_script_enabled=False)
    try:
        context.add_cookies([session_cookie(live_server_url, alice.user)])
        page = context.new_page()
        page.goto("/app/keys/")
        page.get_by_role("link", name="Revoke…").click()
        expect(
            page.get_by_role("heading", name=f"Revoke “{key.name}”?")
        ).to_be_visible()
        assert is_active(key)

        page.get_by_role("button", name="Revoke the key").click()

        expect(page.locator(".messages")).to_contain_text(f"Revoked “{key.name}”")
        assert not is_active(key)
    finally:
        context.close()
