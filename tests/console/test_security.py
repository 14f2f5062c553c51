"""The staff areas: throttled admin login and strict security headers."""

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.console.conftest import make_staff

PASSWORD = "staff password 123"


@pytest.fixture(autouse=True)
def _no_throttle_left():
    cache.clear()
    yield
    cache.clear()


def login(client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def test_five_failed_logins_lock_that_address_from_that_ip(db):
    staff = make_staff("ops@switchboard.test", superuser=True)
    client = Client()
    for _ in range(settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN):
        assert login(client, staff.email, "wrong").status_code == 200
    # Even the right password is refused now: that is the point.
    locked = login(client, staff.email, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address, or the same one from elsewhere, is not locked.
    assert login(Client(), "other@switchboard.test", "wrong").status_code == 200
    assert login(Client(), staff.email, PASSWORD, ip="198.51.100.1").status_code == 302


def test_the_address_is_matched_whatever_its_case(db):
    client = Client()
    for _ in range(settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN):
        login(client, "Ops@Switchboard.test", "wrong")
    assert login(client, "ops@switchboard.test", "wrong").status_code == 429


def test_a_success_clears_the_failures(db):
    staff = make_staff("ops@switchboard.test", superuser=True)
    for _ in range(settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN - 1):
        login(Client(), staff.email, "wrong")
    assert login(Client(), staff.email, PASSWORD).status_code == 302
    for _ in range(settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN - 1):
        assert login(Client(), staff.email, "wrong").status_code == 200
    assert login(Client(), staff.email, PASSWORD).status_code == 302


STRICT = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@pytest.mark.parametrize(
    "path", ["/console/", "/console/tenants/", "/admin/", "/admin/relay/channel/"]
)
def test_staff_pages_carry_strict_security_headers(support_client, channel, path):
    response = support_client.get(path)
    assert response.status_code == 200
    for header, value in STRICT.items():
        assert response[header] == value, header
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_the_login_page_and_redirects_carry_them_too(db):
    page = Client().get(reverse("admin:login"))
    assert page["Content-Security-Policy"].startswith("default-src 'self'")
    redirect = Client().get("/console/")
    assert redirect.status_code == 302
    assert redirect["Cache-Control"] == "no-store"


def test_the_console_pages_have_no_inline_script(support_client, alice, channel):
    for name in ("dashboard", "tenants", "channels", "prices", "usage", "payments"):
        text = support_client.get(reverse(f"console:{name}")).content.decode()
        assert "<script>" not in text
        assert " style=" not in text
        assert " onclick=" not in text


def test_customer_pages_are_left_alone(client, db):
    response = client.get("/pricing/")
    assert response.get("Cache-Control") != "no-store"
