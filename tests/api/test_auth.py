"""Who gets in: management tokens and sessions."""

import secrets

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Membership, User
from api.models import ManagementToken
from api.services import token_revoke
from tests import factories

CSRF_SECRET = "A" * 32


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_token_reads_its_tenants_balance(alice, alice_api):
    response = alice_api.get("/api/balance/")

    assert response.status_code == 200
    assert response.json()["balance"] == alice.wallet.balance


def test_a_token_records_when_it_was_used(alice_api):
    token = ManagementToken.objects.get()
    assert token.last_used_at is None

    alice_api.get("/api/balance/")

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_no_credentials_is_401_with_a_challenge(api_client):
    response = api_client.get("/api/balance/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused(alice_api):
    token_revoke(token=ManagementToken.objects.get())

    response = alice_api.get("/api/balance/")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "This management token was revoked.",
        "code": "token_revoked",
    }


def test_an_unknown_token_is_refused(alice):
    response = bearer("sb-mgmt-" + secrets.token_urlsafe(36)).get("/api/balance/")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_relay_key_is_refused_with_advice(alice):
    response = bearer(alice.secret).get("/api/balance/")

    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "wrong_token_type"
    assert "API key for /v1" in body["detail"]


@pytest.mark.parametrize("secret", ["mgmt-abc", "", "Sb-Mgmt-abc"])
def test_a_secret_of_the_wrong_kind_is_refused(alice, secret):
    response = bearer(secret).get("/api/balance/")

    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_type"


def test_a_token_stops_working_when_its_user_leaves_the_tenant(alice, alice_api):
    Membership.objects.filter(user=alice.user, tenant=alice.tenant).delete()

    response = alice_api.get("/api/balance/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_a_member"


def test_a_token_of_a_disabled_user_is_refused(alice, alice_api):
    User.objects.filter(pk=alice.user.pk).update(is_active=False)

    response = alice_api.get("/api/balance/")

    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_a_token_acts_with_its_users_current_role(alice, alice_api):
    Membership.objects.filter(user=alice.user).update(role=Membership.Role.MEMBER)

    assert alice_api.get("/api/keys/").status_code == 200
    assert alice_api.post("/api/keys/", {"name": "x"}).status_code == 403


def test_a_token_acts_for_its_own_tenant_only(alice, bob, alice_api):
    # Alice also belongs to Bob's tenant; her token is still Alice Corp's.
    factories.membership(bob.tenant, alice.user)
    bob.fund("3.00", reference="more")

    response = alice_api.get("/api/balance/")

    assert response.json()["balance"] == alice.wallet.balance
    assert alice.wallet.balance != bob.wallet.balance


def test_a_session_reads(alice, api_client):
    api_client.force_login(alice.user)

    response = api_client.get("/api/balance/")

    assert response.status_code == 200
    assert response.json()["balance"] == alice.wallet.balance


def test_a_session_acts_for_the_tenant_chosen_in_the_portal(alice, bob, api_client):
    factories.membership(bob.tenant, alice.user)
    bob.fund("3.00", reference="more")
    api_client.force_login(alice.user)
    session = api_client.session
    session["tenant_id"] = bob.tenant.pk
    session.save()

    response = api_client.get("/api/balance/")

    assert response.json()["balance"] == bob.wallet.balance


def test_a_person_without_a_tenant_is_403(db, api_client):
    user = factories.user("dave@example.com")
    api_client.force_login(user)

    response = api_client.get("/api/balance/")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not a member of any tenant.",
        "code": "permission_denied",
    }


@pytest.fixture
def csrf_client(alice) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice.user)
    return client


def test_a_session_post_without_csrf_token_is_refused(alice, csrf_client):
    response = csrf_client.post("/api/keys/", {"name": "ci"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert alice.tenant.api_keys.count() == 1


def test_a_session_post_with_csrf_token_is_accepted(alice, csrf_client):
    csrf_client.cookies["csrftoken"] = CSRF_SECRET

    response = csrf_client.post(
        "/api/keys/", {"name": "ci"}, format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )

    assert response.status_code == 201
    assert alice.tenant.api_keys.filter(name="ci").exists()


def test_a_session_read_needs_no_csrf_token(csrf_client):
    assert csrf_client.get("/api/keys/").status_code == 200


def test_token_requests_need_no_csrf_token(alice, alice_api):
    alice_api.client.enforce_csrf_checks = True
    alice_api.client.handler.enforce_csrf_checks = True

    response = alice_api.post("/api/keys/", {"name": "from a script"})

    assert response.status_code == 201


def test_the_token_prefix_is_stored_not_the_secret(alice_api):
    token = ManagementToken.objects.get()

    assert alice_api.secret.startswith("sb-mgmt-")
    assert alice_api.secret.startswith(token.prefix)
    assert alice_api.secret not in token.digest
    assert token.revoked_at is None and token.created_at <= timezone.now()
