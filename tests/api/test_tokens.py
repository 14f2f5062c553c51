import pytest
from django.core.exceptions import PermissionDenied

from api import tokens
from api.models import ManagementToken
from api.services import token_create


def test_owners_create_tokens_and_see_the_secret_once(alice, alice_api):
    response = alice_api.post("/api/tokens/", {"name": "deploy script"})

    assert response.status_code == 201
    body = response.json()
    token = ManagementToken.objects.get(pk=body["id"])
    assert body["secret"].startswith("sb-mgmt-")
    assert tokens.digest(body["secret"]) == token.digest
    assert body["user"] == "alice@example.com"
    assert token.tenant == alice.tenant
    assert body["secret"] not in str(alice_api.get("/api/tokens/").json())


def test_a_new_token_works(alice, alice_api):
    secret = alice_api.post("/api/tokens/", {"name": "x"}).json()["secret"]
    alice_api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert alice_api.get("/api/balance/").status_code == 200


def test_the_list_shows_every_token_of_the_tenant(alice, carol, alice_api):
    response = alice_api.get("/api/tokens/")

    assert [t["name"] for t in response.json()["results"]] == [
        "alice@example.com's token"
    ]


def test_members_cannot_create_tokens(alice, carol_api):
    response = carol_api.post("/api/tokens/", {"name": "mine"})

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Only owners of the tenant can create or revoke management tokens."
    )
    assert not ManagementToken.objects.filter(user=carol_api.user).exists()


def test_the_service_refuses_a_token_to_a_member(alice, carol):
    with pytest.raises(PermissionDenied):
        token_create(user=carol, tenant=alice.tenant, name="sneaky")


def test_revoke(alice, alice_api):
    other = alice_api.post("/api/tokens/", {"name": "old"}).json()

    response = alice_api.post(f"/api/tokens/{other['id']}/revoke/")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert ManagementToken.objects.get(pk=other["id"]).revoked_at is not None
    assert alice_api.get("/api/balance/").status_code == 200


def test_a_token_can_revoke_itself(alice_api):
    token = ManagementToken.objects.get()

    assert alice_api.post(f"/api/tokens/{token.pk}/revoke/").status_code == 200
    assert alice_api.get("/api/balance/").status_code == 401


def test_members_cannot_revoke_tokens(alice, carol_api):
    token = ManagementToken.objects.create(
        user=alice.user, tenant=alice.tenant, name="t", prefix="sb-mgmt-x", digest="1"
    )

    response = carol_api.post(f"/api/tokens/{token.pk}/revoke/")

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_members_read_tokens(alice, alice_api, carol_api):
    token = ManagementToken.objects.get()

    assert carol_api.get(f"/api/tokens/{token.pk}/").json()["prefix"] == token.prefix


def test_a_token_needs_a_name(alice_api):
    response = alice_api.post("/api/tokens/", {})

    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["This field is required."]}
