"""
Staff's second factor: forced enrolment, a code at every login whatever the
login path, recovery codes that work once; customers are never asked.
"""

import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.totp import code_for_secret, current_code
from tests.console.conftest import enrol_second_factor, make_staff

PASSWORD = "staff password 123"
CUSTOMER_PASSWORD = "correct horse battery"
IP = "203.0.113.40"
VERIFY = "/console/2fa/"
ENROL = "/console/2fa/setup/"


@pytest.fixture(autouse=True)
def _no_throttle_left():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _second_factor_on(settings):
    settings.SWITCHBOARD_STAFF_2FA = True


@pytest.fixture
def staff(db):
    return make_staff("ops@switchboard.test", superuser=True)


def portal_login(client, email, password, ip=IP, next_url=""):
    data = {"username": email, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data, REMOTE_ADDR=ip)


def admin_login(client, email, password, ip=IP):
    return client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def give_code(client, code, next_url="/console/", ip=IP):
    return client.post(VERIFY, {"code": code, "next": next_url}, REMOTE_ADDR=ip)


def enrolled(staff) -> Client:
    """A staff member who enrolled at an earlier login, and logged out."""
    client = Client()
    client.force_login(staff)
    codes = enrol_second_factor(client, staff)
    staff.recovery_codes = codes
    return Client()


# --- The guard --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/", "/console/tenants/", "/admin/"])
def test_staff_without_a_second_factor_cannot_open_the_staff_areas(staff, path):
    client = Client()
    client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{VERIFY}?next=")
    assert response["Cache-Control"] == "no-store"
    # With no authenticator yet, the code page sends them to enrol.
    assert client.get(response["Location"])["Location"].startswith(ENROL)


def test_a_portal_login_does_not_open_the_staff_areas(staff):
    client = Client()
    response = portal_login(client, staff.email, PASSWORD, next_url="/console/")
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY}?next=%2Fconsole%2F"
    assert client.get("/console/")["Location"].startswith(VERIFY)
    assert client.get("/admin/")["Location"].startswith(VERIFY)


def test_an_admin_login_does_not_open_the_staff_areas(staff):
    client = Client()
    assert admin_login(client, staff.email, PASSWORD)["Location"] == "/admin/"
    assert client.get("/admin/")["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    assert client.get("/console/")["Location"].startswith(VERIFY)


def test_customers_are_never_asked(alice):
    client = Client()
    response = portal_login(client, "alice@example.com", CUSTOMER_PASSWORD)
    assert response.status_code == 302
    assert not response["Location"].startswith(VERIFY)
    # And the staff areas stay closed to them, as before.
    assert client.get("/console/")["Location"].startswith("/admin/login/")


def test_staff_are_not_asked_with_the_setting_off(staff, settings):
    settings.SWITCHBOARD_STAFF_2FA = False
    client = Client()
    client.force_login(staff)
    assert client.get("/console/").status_code == 200


def test_the_pages_need_a_signed_in_staff_member(alice):
    assert Client().get(ENROL)["Location"].startswith("/admin/login/")
    client = Client()
    client.force_login(alice.user)
    assert client.get(VERIFY)["Location"].startswith("/admin/login/")
    assert not TOTPDevice.objects.exists()


# --- Enrolment --------------------------------------------------------------


def test_enrolment_shows_a_qr_code_and_the_secret_then_recovery_codes(staff):
    client = Client()
    assert admin_login(client, staff.email, PASSWORD).status_code == 302
    page = client.get(f"{ENROL}?next=/admin/")
    text = page.content.decode()
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert '<svg width="' in text and 'class="twofactor-qr"' in text
    # Nothing inline for a strict CSP: scripts only from files, no style="".
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)
    assert " style=" not in text
    secret = re.search(r'id="twofactor-secret">([A-Z2-7 ]+)<', text).group(1)
    # A reload shows the same secret (the app may already have it).
    assert secret in client.get(ENROL).content.decode()

    wrong = client.post(ENROL, {"code": "000000", "next": "/admin/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert client.get("/admin/").status_code == 302

    TOTPDevice.objects.update(throttling_failure_count=0)  # no 1-second backoff
    shown = client.post(ENROL, {"code": code_for_secret(secret), "next": "/admin/"})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", shown.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert shown["Cache-Control"] == "no-store"
    assert 'href="/admin/"' in shown.content.decode()
    assert client.get("/admin/").status_code == 200
    assert client.get("/console/").status_code == 200
    # Enrolled: the page no longer shows a secret, to anyone with the password.
    assert client.get(ENROL)["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.get(user=staff).confirmed


def test_a_later_login_asks_for_the_code(staff):
    client = enrolled(staff)
    assert portal_login(client, staff.email, PASSWORD).status_code == 302
    assert client.get("/console/")["Location"].startswith(VERIFY)
    page = client.get(f"{VERIFY}?next=/console/")
    assert page.status_code == 200
    assert "authenticator" in page.content.decode()
    device = TOTPDevice.objects.get(user=staff)
    response = give_code(client, current_code(device))
    assert response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_recovery_code_works_once(staff):
    client = enrolled(staff)
    code = staff.recovery_codes[3]
    admin_login(client, staff.email, PASSWORD)
    assert give_code(client, f" {code.upper()} ")["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    assert StaticToken.objects.filter(device__user=staff).count() == 9

    again = Client()
    admin_login(again, staff.email, PASSWORD)
    refused = give_code(again, code)
    assert refused.status_code == 200
    assert "That code is not right" in refused.content.decode()
    assert again.get("/console/")["Location"].startswith(VERIFY)


def test_a_code_leads_only_within_the_site(staff):
    client = enrolled(staff)
    admin_login(client, staff.email, PASSWORD)
    code = current_code(TOTPDevice.objects.get(user=staff))
    response = give_code(client, code, next_url="https://evil.example/")
    assert response["Location"] == "/console/"


def test_resetting_a_staff_members_device_makes_them_enrol_again(staff):
    client = enrolled(staff)
    portal_login(client, staff.email, PASSWORD)
    give_code(client, current_code(TOTPDevice.objects.get(user=staff)))
    assert client.get("/console/").status_code == 200

    call_command("staff_2fa_reset", "OPS@switchboard.test")

    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert not StaticToken.objects.filter(device__user=staff).exists()
    # Their session ended; the next login enrols a new authenticator.
    assert client.get("/console/")["Location"].startswith("/admin/login/")
    portal_login(client, staff.email, PASSWORD)
    assert client.get(VERIFY)["Location"].startswith(ENROL)


# --- One throttle for every login path --------------------------------------


def test_failures_on_the_admin_login_block_the_portal_login(staff, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = 5
    for _ in range(5):
        assert admin_login(Client(), staff.email, "wrong").status_code == 200
    assert admin_login(Client(), staff.email, PASSWORD).status_code == 429
    blocked = portal_login(Client(), staff.email, PASSWORD)
    assert blocked.status_code == 429
    assert "_auth_user_id" not in Client().session


def test_failures_on_the_portal_login_block_the_admin_login(staff, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = 5
    for _ in range(5):
        assert portal_login(Client(), "OPS@switchboard.test", "wrong").status_code == (
            200
        )
    assert admin_login(Client(), staff.email, PASSWORD).status_code == 429
    # Another network is not blocked.
    assert admin_login(
        Client(), staff.email, PASSWORD, ip="198.51.100.3"
    ).status_code == (302)


def test_wrong_codes_count_and_block_every_path(staff, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = 5
    client = enrolled(staff)
    portal_login(client, staff.email, PASSWORD)
    for _ in range(5):
        assert give_code(client, "123456").status_code == 200
    code = current_code(TOTPDevice.objects.get(user=staff))
    assert give_code(client, code).status_code == 429
    assert client.get("/console/")["Location"].startswith(VERIFY)
    assert portal_login(Client(), staff.email, PASSWORD).status_code == 429
    assert admin_login(Client(), staff.email, PASSWORD).status_code == 429


def test_many_addresses_from_one_network_are_blocked(db, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_IP_PER_15_MIN = 6
    for i in range(3):
        portal_login(Client(), f"user{i}@example.com", "wrong")
        admin_login(Client(), f"staff{i}@example.com", "wrong")
    assert portal_login(Client(), "fresh@example.com", "wrong").status_code == 429
    assert admin_login(Client(), "other@example.com", "wrong").status_code == 429
    assert portal_login(
        Client(), "fresh@example.com", "x", ip="192.0.2.8"
    ).status_code == (200)


def test_one_account_guessed_from_many_networks_is_blocked_everywhere(staff, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT_PER_15_MIN = 4
    for n in range(4):  # a different network each time: no per-network limit
        ip = f"198.51.100.{n + 10}"
        assert portal_login(Client(), staff.email, "wrong", ip=ip).status_code == 200

    assert admin_login(
        Client(), staff.email, PASSWORD, ip="192.0.2.99"
    ).status_code == (429)
    assert portal_login(
        Client(), staff.email, PASSWORD, ip="192.0.2.98"
    ).status_code == (429)
    # Other accounts, from the same networks, are not.
    assert portal_login(
        Client(), "someone@example.com", "x", ip="192.0.2.99"
    ).status_code == (200)
