"""Budgets in the portal: shown with their use on the keys page and the
dashboard, set by owners on a key's form and the tenant's."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import ApiKey
from audit.models import AuditEvent
from billing import budgets
from billing.budgets import budgets_set
from billing.models import Budget
from billing.money import usd_to_nano
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


@pytest.fixture
def noon(monkeypatch):
    monkeypatch.setattr(
        budgets, "clock", lambda: datetime(2026, 11, 30, 12, tzinfo=UTC)
    )


def key_of(customer) -> ApiKey:
    return ApiKey.objects.get(tenant=customer.tenant)


def test_the_keys_page_shows_each_budget_with_its_use(signed_in, alice, noon):
    key = key_of(alice)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": usd_to_nano("10")})
    budgets_set(tenant=alice.tenant, caps={"monthly": usd_to_nano("200")})
    Budget.objects.filter(api_key=key).update(
        spent=usd_to_nano("2.50"), held=usd_to_nano("0.75")
    )

    html = signed_in.get(reverse("keys")).content.decode()

    row = html.split(f'data-key-id="{key.pk}"')[1].split("</tr>")[0]
    assert "Daily: <span" in row and "$2.50</span> of <span" in row
    assert 'value="25"' in row
    assert "$0.75</span> in flight" in row
    tenant = html.split('data-testid="tenant-budgets"')[1].split("</section>")[0]
    assert "Monthly: <span" in tenant and "$200.00</span>" in tenant


def test_a_budget_of_a_past_day_shows_nothing_spent_today(signed_in, alice, noon):
    budgets_set(tenant=alice.tenant, caps={"daily": usd_to_nano("10")})
    Budget.objects.update(
        spent=usd_to_nano("9"), period_start=datetime(2026, 11, 29, tzinfo=UTC)
    )

    html = signed_in.get(reverse("keys")).content.decode()

    tenant = html.split('data-testid="tenant-budgets"')[1].split("</section>")[0]
    assert "$0.00</span> of" in tenant


def test_an_owner_sets_and_removes_a_keys_budgets(signed_in, alice):
    key = key_of(alice)
    url = reverse("key_budget", args=[key.pk])

    response = signed_in.post(url, {"daily_budget": "5.25", "lifetime_budget": "100"})

    assert response.status_code == 302
    assert dict(Budget.objects.filter(api_key=key).values_list("period", "cap")) == {
        "daily": usd_to_nano("5.25"),
        "lifetime": usd_to_nano("100"),
    }
    event = AuditEvent.objects.get(action="budget.set")
    assert event.actor == alice.user and event.tenant_id == alice.tenant.pk
    form = signed_in.get(url).content.decode()
    assert 'value="5.25"' in form

    signed_in.post(url, {"daily_budget": "5.25"})

    assert list(Budget.objects.values_list("period", flat=True)) == ["daily"]


def test_an_owner_sets_the_tenants_budgets(signed_in, alice):
    response = signed_in.post(reverse("tenant_budget"), {"monthly_budget": "50"})

    assert response.status_code == 302
    budget = Budget.objects.get()
    assert (budget.api_key, budget.period, budget.cap) == (
        None,
        "monthly",
        usd_to_nano("50"),
    )


def test_a_budget_must_be_an_amount_of_zero_or_more(signed_in, alice):
    response = signed_in.post(reverse("tenant_budget"), {"daily_budget": "-1"})

    assert response.status_code == 400
    assert not Budget.objects.exists()


def test_a_key_can_be_created_with_budgets(signed_in, alice):
    response = signed_in.post(
        reverse("key_create"), {"name": "ci", "monthly_budget": "20"}
    )

    assert response.status_code == 200
    key = ApiKey.objects.get(name="ci")
    assert Budget.objects.get(api_key=key).cap == usd_to_nano("20")


def test_members_cannot_set_budgets(client, alice):
    member = factories.member(alice.tenant, "carol@example.com")
    client.force_login(member)

    assert (
        client.post(reverse("tenant_budget"), {"daily_budget": "1"}).status_code == 403
    )
    url = reverse("key_budget", args=[key_of(alice).pk])
    assert client.post(url, {"daily_budget": "1"}).status_code == 403
    assert not Budget.objects.exists()


def test_another_tenants_key_budget_is_not_found(signed_in, bob):
    url = reverse("key_budget", args=[key_of(bob).pk])

    assert signed_in.post(url, {"daily_budget": "1"}).status_code == 404
    assert not Budget.objects.exists()


def test_the_dashboard_shows_the_budgets(signed_in, alice, noon):
    budgets_set(tenant=alice.tenant, caps={"lifetime": usd_to_nano("100")})
    budgets_set(
        tenant=alice.tenant, key=key_of(alice), caps={"daily": usd_to_nano("3")}
    )

    html = signed_in.get(reverse("dashboard")).content.decode()

    section = html.split('data-testid="dashboard-budgets"')[1].split("</section>")[0]
    assert "Lifetime: <span" in section
    assert "Key “alice&#x27;s key”" in section or "Key “alice's key”" in section
    assert "Daily: <span" in section


def test_the_dashboard_has_no_budgets_section_without_budgets(signed_in, alice):
    html = signed_in.get(reverse("dashboard")).content.decode()

    assert 'data-testid="dashboard-budgets"' not in html
