"""Budgets in the management API: read by members, set by owners."""

import pytest

from accounts.models import ApiKey
from audit.models import AuditEvent
from billing.budgets import budgets_set
from billing.models import Budget
from billing.money import usd_to_nano

TEN = usd_to_nano("10")


def key_of(customer) -> ApiKey:
    return ApiKey.objects.get(tenant=customer.tenant)


def put(caller, path, data):
    return caller.client.put(path, data, format="json")


def test_the_tenants_budgets_are_set_read_and_removed(alice_api, alice):
    assert alice_api.get("/api/budgets/").json() == []

    response = put(alice_api, "/api/budgets/", {"daily": TEN, "lifetime": 5 * TEN})

    assert response.status_code == 200
    assert [b["period"] for b in response.json()] == ["daily", "lifetime"]
    Budget.objects.filter(period="daily").update(spent=usd_to_nano("1.5"), held=7)
    daily = alice_api.get("/api/budgets/").json()[0]
    assert daily["cap"] == TEN and daily["cap_usd"] == "10.000000000"
    assert daily["spent"] == usd_to_nano("1.5") and daily["held"] == 7
    assert daily["resets_at"] is not None
    assert alice_api.get("/api/budgets/").json()[1]["resets_at"] is None
    assert AuditEvent.objects.filter(action="budget.set", actor=alice.user).exists()

    response = put(alice_api, "/api/budgets/", {"daily": None})

    assert [b["period"] for b in response.json()] == ["lifetime"]


def test_a_keys_budgets_are_its_own(alice_api, alice):
    key = key_of(alice)

    response = put(alice_api, f"/api/keys/{key.pk}/budgets/", {"monthly": TEN})

    assert response.status_code == 200
    assert response.json()[0]["period"] == "monthly"
    assert Budget.objects.get().api_key == key
    assert alice_api.get("/api/budgets/").json() == []
    assert alice_api.get(f"/api/keys/{key.pk}/budgets/").json()[0]["cap"] == TEN


def test_another_tenants_key_is_not_found(alice_api, bob):
    path = f"/api/keys/{key_of(bob).pk}/budgets/"

    assert alice_api.get(path).status_code == 404
    assert put(alice_api, path, {"daily": TEN}).status_code == 404
    assert not Budget.objects.exists()


def test_members_read_budgets_but_cannot_set_them(carol_api, alice):
    budgets_set(tenant=alice.tenant, caps={"daily": TEN})

    assert carol_api.get("/api/budgets/").json()[0]["cap"] == TEN
    response = put(carol_api, "/api/budgets/", {"daily": 0})

    assert response.status_code == 403
    assert Budget.objects.get().cap == TEN


@pytest.mark.parametrize("cap", [-1, "ten", 1.5, True])
def test_a_cap_must_be_whole_nano_usd_of_zero_or_more(alice_api, cap):
    response = put(alice_api, "/api/budgets/", {"daily": cap})

    assert response.status_code == 400
    assert not Budget.objects.exists()
