"""Budgets in the admin: set through billing.budgets, every edit audited."""

from accounts.models import ApiKey
from audit.models import AuditEvent
from billing.budgets import budgets_set
from billing.models import Budget
from billing.money import usd_to_nano

BUDGETS = "/admin/billing/budget/"


def test_staff_add_a_budget_and_it_is_audited(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)

    response = admin_client.post(
        f"{BUDGETS}add/",
        {
            "tenant": alice.tenant.pk,
            "api_key": key.pk,
            "period": "daily",
            "cap_usd": "12.50",
        },
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
    budget = Budget.objects.get()
    assert (budget.api_key, budget.period, budget.cap) == (
        key,
        "daily",
        usd_to_nano("12.50"),
    )
    event = AuditEvent.objects.get(action="budget.create")
    assert event.tenant_id == alice.tenant.pk
    assert event.target == f"budget:{budget.pk}"


def test_changing_the_cap_keeps_what_requests_moved_meanwhile(admin_client, alice):
    budgets_set(tenant=alice.tenant, caps={"monthly": usd_to_nano("10")})
    budget = Budget.objects.get()
    page = admin_client.get(f"{BUDGETS}{budget.pk}/change/")
    assert page.status_code == 200
    # Requests settle while the page is open.
    Budget.objects.update(spent=123, held=45)

    response = admin_client.post(f"{BUDGETS}{budget.pk}/change/", {"cap_usd": "20"})

    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.cap, budget.spent, budget.held) == (usd_to_nano("20"), 123, 45)
    assert AuditEvent.objects.filter(action="budget.change").count() == 1


def test_removing_a_budget_is_audited(admin_client, alice):
    budgets_set(tenant=alice.tenant, caps={"lifetime": usd_to_nano("10")})
    budget = Budget.objects.get()

    response = admin_client.post(f"{BUDGETS}{budget.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Budget.objects.exists()
    assert AuditEvent.objects.filter(action="budget.delete").count() == 1


def test_a_key_of_another_tenant_is_refused(admin_client, alice, bob):
    response = admin_client.post(
        f"{BUDGETS}add/",
        {
            "tenant": alice.tenant.pk,
            "api_key": ApiKey.objects.get(tenant=bob.tenant).pk,
            "period": "daily",
            "cap_usd": "1",
        },
    )

    assert response.status_code == 200
    assert "The key is not the tenant" in response.content.decode()
    assert not Budget.objects.exists()
