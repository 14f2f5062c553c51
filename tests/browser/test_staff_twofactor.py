"""
Issue 13 in a real browser: a staff member's first login forces enrolment of
an authenticator (the secret read from the page, the code computed from it
as a phone would), shows the recovery codes once, and opens the console; a
later login asks for a code before the console opens.
"""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from accounts import roles
from accounts.models import User
from tests.accounts.totp import code_for_secret
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

EMAIL = "sam@switchboard.test"
PASSWORD = "a long staff passphrase"


@pytest.fixture
def staff(transactional_db, settings) -> User:
    settings.SWITCHBOARD_STAFF_2FA = True
    user = User.objects.create_user(EMAIL, PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=roles.SUPPORT)[0])
    return user


def sign_in(page) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_staff_enrol_at_first_login_then_give_a_code_at_the_next(
    page, live_server_url, staff, csp_violations
):
    sign_in(page)
    # No authenticator yet: the console waits behind enrolment.
    expect(page).to_have_url(re.compile(r"/console/2fa/setup/\?next="))
    expect(page.locator("svg.twofactor-qr")).to_be_visible()
    screenshot(page, "staff-2fa-enrol")
    secret = page.locator("#twofactor-secret").inner_text()
    page.get_by_label("Code from the app").fill(code_for_secret(secret))
    page.get_by_role("button", name="Confirm").click()

    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    screenshot(page, "staff-2fa-recovery-codes")
    page.get_by_role("link", name="I have saved them: continue").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.context.clear_cookies()

    # A later login asks for a code (the next 30-second step's: the one used
    # to enrol is not accepted twice) before the console opens.
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/console/2fa/\?next="))
    page.get_by_label("Code").fill(code_for_secret(secret, steps_ahead=1))
    screenshot(page, "staff-2fa-verify")
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    assert csp_violations == []
