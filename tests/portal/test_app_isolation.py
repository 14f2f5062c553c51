"""Charlie should have no access to Alice's stuff: every id of another tenant
is a 404 in the signed-in pages, and lists never show another tenant's rows."""

import pytest
from django.urls import reverse

from accounts.models import ApiKey
from tests import factories


@pytest.fixture
def bobs(bob):
    """Bob's key, usage record and payment."""
    return {
        "key": bob.tenant.api_keys.get(),
        "usage": factories.usage_record(bob, model="gpt-4.1-nano", charged=777_777),
        "payment": factories.payment(
            bob, amount_cents=4200, stripe_session_id="cs_test_bob"
        ),
    }


@pytest.fixture(params=["owner", "member"])
def alices_client(request, client, alice):
    if request.param == "owner":
        user = alice.user
    else:
        user = factories.member(alice.tenant, "mallory@example.com")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("method", "name", "what"),
    [
        ("get", "key_revoke", "key"),
        ("post", "key_revoke", "key"),
        ("get", "usage_detail", "usage"),
        ("get", "billing_payment", "payment"),
    ],
)
def test_another_tenants_objects_are_404(alices_client, bobs, method, name, what):
    obj = bobs[what]
    arg = obj.request_id if what == "usage" else obj.pk
    response = getattr(alices_client, method)(reverse(name, args=[arg]))
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=bobs["key"].pk).revoked_at is None


@pytest.mark.parametrize(
    ("name", "arg"),
    [("key_revoke", 10**9), ("usage_detail", "req-guess"), ("billing_payment", 10**9)],
)
def test_guessed_ids_are_404(alices_client, name, arg):
    assert alices_client.get(reverse(name, args=[arg])).status_code == 404


def test_lists_show_only_the_tenants_own_rows(alices_client, alice, bob, bobs):
    mine = factories.usage_record(alice, charged=123)
    pages = {
        name: alices_client.get(reverse(name)).content.decode()
        for name in ("dashboard", "keys", "usage", "billing", "billing_payments")
    }
    bob_key = bobs["key"]
    for name, html in pages.items():
        assert bob_key.prefix not in html, name
        assert bobs["usage"].request_id not in html, name
        assert "gpt-4.1-nano" not in html or name == "keys", name
        assert "$42.00" not in html, name
    assert mine.request_id in pages["usage"]
    ledger = alices_client.get(reverse("billing_ledger"))
    refs = {entry.reference for entry in ledger.context["page"]}
    assert refs == set(alice.tenant.ledger.values_list("reference", flat=True))
    assert not refs & set(bob.tenant.ledger.values_list("reference", flat=True))


def test_the_usage_filter_refuses_another_tenants_key(alices_client, alice, bobs):
    response = alices_client.get(reverse("usage"), {"key": bobs["key"].pk})
    assert response.context["page"] is None
    assert "No API key of this tenant has this id." in response.content.decode()
    export = alices_client.get(reverse("usage_csv"), {"key": bobs["key"].pk})
    assert export.status_code == 400
