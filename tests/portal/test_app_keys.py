"""API keys in the portal: the secret shown once, allowlists, expiry, revoking."""

from datetime import timedelta

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts import auth
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def create(client, **fields):
    return client.post(reverse("key_create"), {"name": "ci", **fields})


def test_the_list_shows_every_key_of_the_tenant(signed_in, alice):
    key = alice.tenant.api_keys.get()
    ApiKey.objects.filter(pk=key.pk).update(
        last_used_at=timezone.now(), allowed_models=["gpt-4.1-nano"]
    )
    html = signed_in.get(reverse("keys")).content.decode()
    assert escape(key.name) in html and f"{key.prefix}…" in html
    assert "<code>gpt-4.1-nano</code>" in html
    assert "Active" in html
    assert alice.secret not in html


def test_the_list_says_which_keys_expired_or_were_revoked(signed_in, alice):
    expired, _ = api_key_create(
        tenant=alice.tenant, name="old", expires_at=timezone.now()
    )
    revoked, _ = api_key_create(
        tenant=alice.tenant, name="leaked", expires_at=timezone.now()
    )
    api_key_revoke(key=revoked)
    html = signed_in.get(reverse("keys")).content.decode()

    def state(key) -> str:
        row = html.split(f'data-key-id="{key.pk}"')[1].split("</tr>")[0]
        return row.split('class="badge ')[1].split("<")[0]

    assert state(alice.tenant.api_keys.order_by("pk").first()) == 'success">Active'
    assert state(expired) == 'warning">Expired'
    # Revoked whatever its expiry.
    assert state(revoked).startswith('danger">Revoked ')


def test_creating_a_key_shows_its_secret_once(signed_in, alice, channel):
    response = create(
        signed_in,
        allowed_models=["gpt-4.1-mini", "gpt-4.1-nano"],
        expires_on=(timezone.localdate() + timedelta(days=2)).isoformat(),
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    assert secret.startswith("sk-sb-")
    assert response.content.decode().count(secret) == 1
    key = ApiKey.objects.get(name="ci")
    assert key.tenant == alice.tenant and key.created_by == alice.user
    assert key.allowed_models == ["gpt-4.1-mini", "gpt-4.1-nano"]
    assert key.expires_at.date() == timezone.localdate() + timedelta(days=3)
    for page in ("keys", "dashboard", "usage", "billing"):
        assert secret not in signed_in.get(reverse(page)).content.decode()
    revoke_page = signed_in.get(reverse("key_revoke", args=[key.pk]))
    assert secret not in revoke_page.content.decode()


def test_the_allowlist_offers_the_served_models_only(signed_in, channel):
    form = signed_in.get(reverse("key_create")).context["form"]
    offered = [value for value, _ in form.fields["allowed_models"].choices]
    assert offered == ["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"]
    response = create(signed_in, allowed_models=["gpt-5-turbo"])
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ApiKey.objects.filter(name="ci").exists()


def test_bad_input_is_explained(signed_in):
    response = signed_in.post(
        reverse("key_create"), {"name": "  ", "expires_on": "2001-01-01"}
    )
    html = response.content.decode()
    assert "This field is required." in html
    assert "Choose today or a later day." in html
    assert ApiKey.objects.count() == 1


def test_revoking_asks_first_then_revokes(signed_in, alice):
    key = alice.tenant.api_keys.get()
    confirm = signed_in.get(reverse("key_revoke", args=[key.pk]))
    assert "Revoke the key" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    response = signed_in.post(reverse("key_revoke", args=[key.pk]), follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked" in response.content.decode()


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "key_create", []),
        ("post", "key_create", []),
        ("get", "key_revoke", ["key"]),
        ("post", "key_revoke", ["key"]),
    ],
)
def test_members_cannot_create_or_revoke_keys(client, alice, method, name, args):
    key = alice.tenant.api_keys.get()
    client.force_login(factories.member(alice.tenant, "mallory@example.com"))
    url = reverse(name, args=[key.pk for _ in args])
    response = getattr(client, method)(url, {"name": "sneaky"})
    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApiKey.objects.count() == 1
    listing = client.get(reverse("keys")).content.decode()
    assert reverse("key_create") not in listing


def test_a_key_created_and_revoked_in_the_portal_is_refused_by_the_relay(
    client, alice, relay, channel
):
    client.force_login(alice.user)
    secret = create(client).context["secret"]
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {secret}"}
    assert httpx.post(
        f"{relay}/chat/completions", json=body, headers=headers
    ).is_success
    key = ApiKey.objects.get(name="ci")
    client.post(reverse("key_revoke", args=[key.pk]))
    auth.forget_cached_keys()  # the relay's per-process cache, here in-process
    refused = httpx.post(f"{relay}/chat/completions", json=body, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"


def test_a_key_can_be_created_with_limits(signed_in):
    response = create(
        signed_in,
        rpm_limit="60",
        tpm_limit="40000",
        allowed_ips="203.0.113.7,\n10.0.0.0/8",
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="ci")
    assert (key.rpm_limit, key.tpm_limit) == (60, 40000)
    assert key.allowed_ips == ["203.0.113.7/32", "10.0.0.0/8"]
    listing = signed_in.get(reverse("keys")).content.decode()
    assert "60 req/min, 40000 tokens/min" in listing


def test_bad_limits_are_explained(signed_in):
    response = create(signed_in, rpm_limit="0", allowed_ips="10.0.0.300")
    html = response.content.decode()
    assert "greater than or equal to 1" in html
    assert "not an IP address or network" in html
    assert not ApiKey.objects.filter(name="ci").exists()
