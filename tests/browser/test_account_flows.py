"""
Accounts in a real browser: signup, the emailed verification link and the
starter credit it brings, login and logout, password reset by email.
"""

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PASSWORD = "a long enough passphrase"


def sign_up(page, email="dana@example.com", company="Dana Labs"):
    page.goto("/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company or project name").fill(company)
    page.get_by_role("button", name="Create account").click()


def log_in(page, email, password):
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_signup_then_the_verification_link_brings_the_starter_credit(page, mail):
    page.goto("/signup/")
    screenshot(page, "signup")
    sign_up(page)
    page.wait_for_url("**/account/")
    expect(page.get_by_test_id("tenant-name")).to_have_text("Dana Labs")
    expect(page.get_by_test_id("header-balance")).to_have_text("$0.00")
    expect(page.locator(".messages")).to_contain_text("We sent a link")

    page.goto(mail.link("dana@example.com", r"/verify-email/[^/\s]+/"))
    expect(page.locator(".messages")).to_contain_text(
        "$1.00 of starter credit is in your balance"
    )
    expect(page.get_by_test_id("header-balance")).to_have_text("$1.00")
    page.goto("/account/")
    expect(page.get_by_test_id("account-balance")).to_have_text("$1.00")
    expect(page.get_by_test_id("account-promo")).to_contain_text("$1.00 starter credit")
    screenshot(page, "account-verified")
    assert User.objects.get(email="dana@example.com").email_verified_at is not None


def test_signup_errors_show_next_to_the_fields(page):
    page.goto("/signup/")
    page.get_by_label("Email").fill("not-an-address")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    error_id = email.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("valid email address")
    expect(page.locator("#id_password_error")).to_contain_text("too short")
    screenshot(page, "signup-errors")
    assert not User.objects.exists()


def test_login_and_logout(page, alice):
    log_in(page, "alice@example.com", "wrong password")
    expect(page.locator(".errorlist")).to_contain_text("not right")
    log_in(page, "Alice@Example.com", "correct horse battery")
    page.goto("/account/")
    expect(page.get_by_test_id("account-email")).to_have_text("alice@example.com")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.goto("/account/")
    assert "/login/" in page.url


def test_password_reset_by_the_emailed_link(page, mail, alice):
    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    page.goto(mail.link("alice@example.com", r"/password-reset/[^/\s]+/[^/\s]+/"))
    screenshot(page, "password-reset")
    page.get_by_label("New password", exact=True).fill("a fresh new passphrase")
    page.get_by_label("New password confirmation").fill("a fresh new passphrase")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Password changed")

    log_in(page, "alice@example.com", "a fresh new passphrase")
    page.goto("/account/")
    expect(page.get_by_test_id("account-email")).to_have_text("alice@example.com")
