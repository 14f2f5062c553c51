"""Management tokens in the portal: the secret shown once, listed, revoked."""

import pytest
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

from api.models import ManagementToken
from api.services import token_create
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def api_status(secret: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get("/api/balance/").status_code


def test_creating_a_token_shows_its_secret_once(signed_in, alice):
    response = signed_in.post(reverse("token_create"), {"name": "deploy script"})

    assert response.status_code == 200
    token = ManagementToken.objects.get(tenant=alice.tenant, name="deploy script")
    assert token.user == alice.user
    html = response.content.decode()
    secret = html.split('data-testid="new-secret">')[1].split("<")[0]
    assert secret.startswith("sb-mgmt-") and secret.startswith(token.prefix)
    assert 'data-copy-target="new-secret"' in html
    assert "<script>" not in html and "style=" not in html
    # The secret is a working token for /api/, and never shown again.
    assert api_status(secret) == 200
    assert secret not in signed_in.get(reverse("tokens")).content.decode()


def test_the_page_with_the_secret_is_never_stored(signed_in):
    response = signed_in.post(reverse("token_create"), {"name": "ci"})

    assert "no-store" in response["Cache-Control"]


def test_a_token_needs_a_name(signed_in, alice):
    response = signed_in.post(reverse("token_create"), {"name": "  "})

    assert response.status_code == 200
    assert "sb-mgmt-" not in response.content.decode()
    assert not ManagementToken.objects.filter(tenant=alice.tenant).exists()


def test_the_list_shows_the_tenants_tokens(signed_in, alice, bob):
    token, secret = token_create(user=alice.user, tenant=alice.tenant, name="<ci>")
    api_status(secret)  # marks it used
    other, _ = token_create(user=bob.user, tenant=bob.tenant, name="bob's token")

    html = signed_in.get(reverse("tokens")).content.decode()

    row = html.split(f'data-token-id="{token.pk}"')[1].split("</tr>")[0]
    assert escape("<ci>") in row and f"{token.prefix}…" in row
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at.strftime("%Y-%m-%d") in row
    assert 'class="badge success">Active' in row
    assert secret not in html
    assert f'data-token-id="{other.pk}"' not in html


def test_revoking_asks_first_then_the_api_refuses_the_token(signed_in, alice):
    token, secret = token_create(user=alice.user, tenant=alice.tenant, name="old")
    url = reverse("token_revoke", args=[token.pk])

    page = signed_in.get(url).content.decode()
    assert '<button type="submit" class="danger">' in page
    token.refresh_from_db()
    assert token.revoked_at is None
    assert api_status(secret) == 200

    response = signed_in.post(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_status(secret) == 401
    html = signed_in.get(reverse("tokens")).content.decode()
    assert 'class="badge danger">Revoked' in html


@pytest.mark.parametrize(
    "method, name, needs_token",
    [
        ("get", "tokens", False),
        ("get", "token_create", False),
        ("post", "token_create", False),
        ("get", "token_revoke", True),
        ("post", "token_revoke", True),
    ],
)
def test_members_are_refused(client, alice, method, name, needs_token):
    token, secret = token_create(user=alice.user, tenant=alice.tenant, name="t")
    client.force_login(factories.member(alice.tenant, "carol@example.com"))
    args = [token.pk] if needs_token else []

    response = getattr(client, method)(reverse(name, args=args), {"name": "x"})

    assert response.status_code == 403
    assert ManagementToken.objects.filter(tenant=alice.tenant).count() == 1
    assert api_status(secret) == 200


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_tenants_token_is_404(signed_in, bob, method):
    token, secret = token_create(user=bob.user, tenant=bob.tenant, name="bob's")

    response = getattr(signed_in, method)(reverse("token_revoke", args=[token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert api_status(secret) == 200


def test_only_owners_see_the_page_in_the_navigation(signed_in, alice):
    link = f'href="{reverse("tokens")}"'
    assert link in signed_in.get(reverse("keys")).content.decode()

    signed_in.force_login(factories.member(alice.tenant, "carol@example.com"))
    assert link not in signed_in.get(reverse("keys")).content.decode()
