"""Budgets in the management API: read by members, set by owners."""

import pytest

from accounts.models import ApiKey
from audit.models import AuditEvent
from billing import budgets
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


# -- budgets given when the key is created ------------------------------------


def test_a_key_is_created_with_its_budgets(alice_api, alice):
    response = alice_api.post(
        "/api/keys/",
        {"name": "ci", "budgets": {"daily": TEN, "lifetime": 5 * TEN}},
    )

    assert response.status_code == 201
    body = response.json()
    key = ApiKey.objects.get(pk=body["id"])
    assert [(b["period"], b["cap"], b["spent"]) for b in body["budgets"]] == [
        ("daily", TEN, 0),
        ("lifetime", 5 * TEN, 0),
    ]
    assert body["budgets"][0]["cap_usd"] == "10.000000000"
    assert body["budgets"] == alice_api.get(f"/api/keys/{key.pk}/budgets/").json()
    assert {b.api_key_id for b in Budget.objects.all()} == {key.pk}
    # Audited as budgets set later are.
    event = AuditEvent.objects.get(action="budget.set")
    assert event.actor == alice.user
    assert event.target == f"apikey:{key.pk}"
    assert alice_api.get("/api/budgets/").json() == []


def test_a_key_created_without_budgets_has_none(alice_api, alice):
    plain = alice_api.post("/api/keys/", {"name": "ci"})
    nulls = alice_api.post("/api/keys/", {"name": "ci2", "budgets": {"daily": None}})

    assert plain.status_code == nulls.status_code == 201
    assert plain.json()["budgets"] == nulls.json()["budgets"] == []
    assert not Budget.objects.exists()
    assert not AuditEvent.objects.filter(action="budget.set").exists()


@pytest.mark.parametrize(
    "given, wrong",
    [
        ({"daily": -1, "monthly": "ten"}, {"daily", "monthly"}),
        ({"lifetime": 1.5}, {"lifetime"}),
        ({"daily": True}, {"daily"}),
    ],
)
def test_bad_budgets_refuse_the_key_in_the_apis_error_shape(
    alice_api, alice, given, wrong
):
    response = alice_api.post("/api/keys/", {"name": "ci", "budgets": given})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"budgets"}
    assert set(body["errors"]["budgets"]) == wrong
    assert body["detail"].startswith("budgets: ")
    assert not ApiKey.objects.filter(name="ci").exists()
    assert not Budget.objects.exists()


def test_budgets_must_be_an_object(alice_api, alice):
    response = alice_api.post("/api/keys/", {"name": "ci", "budgets": [TEN]})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"budgets"}
    assert not ApiKey.objects.filter(name="ci").exists()


def test_no_key_is_left_without_the_budgets_it_asked(alice_api, alice, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(budgets, "budgets_set", fail)

    with pytest.raises(RuntimeError):
        alice_api.post("/api/keys/", {"name": "ci", "budgets": {"daily": TEN}})

    assert not ApiKey.objects.filter(name="ci").exists()
