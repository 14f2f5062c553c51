"""
Who reaches the console: staff only, and what each role may change.
Charlie-style isolation: a customer, however signed in, never gets a page.
"""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from billing.models import LedgerEntry, ModelPrice, PriceChange, Wallet
from console import urls as console_urls
from relay.models import Channel
from tests.console.conftest import client_for, make_staff

SAMPLES = {"int": 1, "str": "req_missing"}


def console_urls_all() -> list[tuple[str, str]]:
    """(name, URL) of every console URL pattern, with sample arguments."""
    found = []
    for pattern in console_urls.urlpatterns:
        kwargs = {
            name: SAMPLES["int" if type(conv).__name__ == "IntConverter" else "str"]
            for name, conv in pattern.pattern.converters.items()
        }
        found.append((pattern.name, reverse(f"console:{pattern.name}", kwargs=kwargs)))
    return found


ALL = console_urls_all()


def test_every_console_view_checks_a_role():
    for pattern in console_urls.urlpatterns:
        assert hasattr(pattern.callback, "console_capability"), pattern.name


@pytest.mark.parametrize(("name", "url"), ALL, ids=[n for n, _ in ALL])
def test_a_customer_never_reaches_a_console_url(alice, name, url):
    customer = client_for(alice.user)
    anonymous = Client()
    for client in (customer, anonymous):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (name, response.status_code)
            assert response["Location"].startswith(reverse("admin:login"))


def test_a_customer_gets_no_admin_page(alice):
    response = client_for(alice.user).get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(("name", "url"), ALL, ids=[n for n, _ in ALL])
def test_staff_without_a_role_is_refused(db, name, url):
    nobody = client_for(make_staff("norole@switchboard.test"))
    assert nobody.get(url).status_code == 403


READABLE = ["dashboard", "tenants", "channels", "prices", "usage", "payments", "audit"]


@pytest.mark.parametrize("name", READABLE)
def test_support_reads_every_page(support_client, alice, channel, name):
    response = support_client.get(reverse(f"console:{name}"))
    assert response.status_code == 200


def test_support_reads_a_tenant_but_sees_no_money_forms(support_client, alice):
    page = support_client.get(reverse("console:tenant", args=[alice.tenant.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert reverse("console:tenant_suspend", args=[alice.tenant.pk]) in text
    assert reverse("console:tenant_adjust", args=[alice.tenant.pk]) not in text


def test_support_cannot_change_money(support_client, alice):
    tenant = alice.tenant
    ledger_before = LedgerEntry.objects.count()
    balance_before = alice.wallet.balance
    posts = [
        (
            "tenant_adjust",
            [tenant.pk],
            {
                "direction": "credit",
                "amount": "5",
                "reason": "goodwill",
                "token": "a" * 32,
            },
        ),
        ("tenant_plan", [tenant.pk], {"plan": "", "reason": "x"}),
        (
            "tenant_key_revoke",
            [tenant.pk, tenant.api_keys.get().pk],
            {"revoke-reason": "leaked"},
        ),
    ]
    for name, args, data in posts:
        response = support_client.post(reverse(f"console:{name}", args=args), data)
        assert response.status_code == 403, name
    assert LedgerEntry.objects.count() == ledger_before
    assert Wallet.objects.get(tenant=tenant).balance == balance_before
    assert tenant.api_keys.get().revoked_at is None
    assert not AuditEvent.objects.exists()


def test_support_cannot_change_prices(support_client, prices):
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    assert (
        support_client.get(reverse("console:price_change", args=[price.pk])).status_code
        == 403
    )
    response = support_client.post(
        reverse("console:price_change", args=[price.pk]),
        {"input_per_mtok": "9", "output_per_mtok": "9", "reason": "x"},
    )
    assert response.status_code == 403
    assert support_client.get(reverse("console:price_import")).status_code == 403
    price.refresh_from_db()
    assert str(price.input_per_mtok) == "0.400"
    assert not PriceChange.objects.exists()


def test_support_cannot_change_channels(support_client, channel):
    for name in ("channel_test", "channel_toggle"):
        response = support_client.post(
            reverse(f"console:{name}", args=[channel.pk]), {"toggle-reason": "x"}
        )
        assert response.status_code == 403, name
    channel.refresh_from_db()
    assert channel.is_enabled


def test_support_reads_channels_in_the_admin_but_cannot_change_them(
    support_client, channel
):
    assert support_client.get("/admin/relay/channel/").status_code == 200
    assert (
        support_client.get(f"/admin/relay/channel/{channel.pk}/change/").status_code
        == 200
    )
    assert support_client.get("/admin/relay/channel/add/").status_code == 403
    response = support_client.post(
        f"/admin/relay/channel/{channel.pk}/change/", {"name": "renamed"}
    )
    assert response.status_code == 403
    assert (
        support_client.post(f"/admin/relay/channel/{channel.pk}/test/").status_code
        == 403
    )
    assert (
        support_client.post(
            f"/admin/relay/channel/{channel.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Channel.objects.get(pk=channel.pk).name == "fake-openai"


def test_support_suspends_and_resumes(support_client, alice):
    tenant = alice.tenant
    response = support_client.post(
        reverse("console:tenant_suspend", args=[tenant.pk]),
        {"suspend-reason": "abuse report"},
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert not tenant.is_active
    response = support_client.post(
        reverse("console:tenant_resume", args=[tenant.pk]),
        {"resume-reason": "cleared"},
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.is_active


def test_finance_changes_money(finance_client, alice):
    response = finance_client.post(
        reverse("console:tenant_adjust", args=[alice.tenant.pk]),
        {"direction": "credit", "amount": "5", "reason": "goodwill", "token": "b" * 32},
    )
    assert response.status_code == 302
    assert LedgerEntry.objects.filter(kind="adjustment", tenant=alice.tenant).exists()


def test_a_superuser_may_do_everything(superuser, channel):
    client = client_for(superuser)
    assert client.get(reverse("console:dashboard")).status_code == 200
    assert client.get("/admin/relay/channel/add/").status_code == 200
