"""Charlie should have no access to Alice's stuff: here Alice to Bob's."""

import pytest

from accounts.models import ApiKey
from api.models import ManagementToken
from billing.models import LedgerEntry, Payment
from tests.api.conftest import make_payment, make_usage


@pytest.fixture
def bobs_objects(bob, bob_api) -> dict[str, str]:
    """The detail URL of one object of each kind of Bob's tenant."""
    key = bob.tenant.api_keys.get()
    record = make_usage(bob, 0, api_key=key)
    entry = LedgerEntry.objects.get(tenant=bob.tenant)
    payment = make_payment(bob, 0)
    token = ManagementToken.objects.get(tenant=bob.tenant)
    return {
        "key": f"/api/keys/{key.pk}/",
        "usage": f"/api/usage/{record.request_id}/",
        "ledger": f"/api/ledger/{entry.pk}/",
        "payment": f"/api/payments/{payment.pk}/",
        "token": f"/api/tokens/{token.pk}/",
    }


@pytest.mark.parametrize("kind", ["key", "usage", "ledger", "payment", "token"])
def test_another_tenants_object_is_404(bobs_objects, bob_api, alice_api, kind):
    url = bobs_objects[kind]
    assert bob_api.get(url).status_code == 200  # the URL is right

    response = alice_api.get(url)

    assert response.status_code == 404
    assert response.json() == {"detail": "No such object.", "code": "not_found"}


@pytest.mark.parametrize("kind", ["key", "usage", "ledger", "payment", "token"])
def test_a_member_gets_404_too(bobs_objects, carol_api, kind):
    assert carol_api.get(bobs_objects[kind]).status_code == 404


@pytest.mark.parametrize("kind", ["key", "token"])
def test_another_tenants_key_or_token_cannot_be_revoked(
    bob, bobs_objects, alice_api, kind
):
    response = alice_api.post(bobs_objects[kind] + "revoke/")

    assert response.status_code == 404
    assert not bob.tenant.api_keys.filter(revoked_at__isnull=False).exists()
    assert not ManagementToken.objects.filter(
        tenant=bob.tenant, revoked_at__isnull=False
    ).exists()


@pytest.mark.parametrize(
    "kind, model",
    [
        ("keys", ApiKey),
        ("ledger", LedgerEntry),
        ("payments", Payment),
        ("tokens", ManagementToken),
    ],
)
def test_guessing_ids_finds_only_ones_own(
    alice, bob, bobs_objects, alice_api, kind, model
):
    make_payment(alice, 1)
    rows = model.objects.filter(tenant__in=[alice.tenant, bob.tenant])
    own = set(rows.filter(tenant=alice.tenant).values_list("pk", flat=True))
    ids = set(rows.values_list("pk", flat=True))
    assert own and ids - own

    found = {
        guess
        for guess in range(min(ids) - 2, max(ids) + 3)
        if alice_api.get(f"/api/{kind}/{guess}/").status_code == 200
    }

    assert found == own


def test_lists_never_show_another_tenants_rows(bob, bobs_objects, alice_api):
    for kind in ("keys", "usage", "ledger", "payments", "tokens"):
        body = str(alice_api.get(f"/api/{kind}/").json())
        assert "bob" not in body.lower(), kind
        assert f"req_{bob.tenant.pk}_" not in body, kind


def test_a_usage_filter_by_another_tenants_key_finds_nothing(
    bob, bobs_objects, alice_api
):
    key = bob.tenant.api_keys.get()

    response = alice_api.get("/api/usage/", key=key.pk)

    assert response.status_code == 200
    assert response.json()["results"] == []
