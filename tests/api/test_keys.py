from datetime import timedelta

from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey


def test_it_lists_the_tenants_keys_newest_first(alice, alice_api):
    first = alice.tenant.api_keys.get()
    second = ApiKey.objects.create(
        tenant=alice.tenant,
        name="ci",
        prefix="sk-sb-abcdef",
        digest="0" * 64,
        created_at=first.created_at + timedelta(seconds=1),
    )

    body = alice_api.get("/api/keys/").json()

    assert [key["id"] for key in body["results"]] == [second.pk, first.pk]
    listed = body["results"][1]
    assert listed["name"] == "alice's key"
    assert listed["prefix"] == first.prefix
    assert listed["status"] == "active"
    assert listed["created_by"] == "alice@example.com"
    assert "secret" not in listed and "digest" not in listed
    assert body["next"] is None


def test_create_returns_the_secret_once(alice, alice_api):
    expires = timezone.now() + timedelta(days=7)

    response = alice_api.post(
        "/api/keys/",
        {
            "name": "ci",
            "allowed_models": ["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4.1"],
            "expires_at": expires.isoformat(),
        },
    )

    assert response.status_code == 201
    body = response.json()
    key = ApiKey.objects.get(pk=body["id"])
    assert body["secret"].startswith("sk-sb-")
    assert keys.digest(body["secret"]) == key.digest
    assert key.name == "ci"
    assert key.allowed_models == ["gpt-4.1-mini", "gpt-4.1"]
    assert key.expires_at == expires
    assert key.created_by == alice.user
    detail = alice_api.get(f"/api/keys/{key.pk}/").json()
    assert "secret" not in detail
    assert body["secret"] not in str(alice_api.get("/api/keys/").json())


def test_create_refuses_bad_input_naming_each_field(alice, alice_api):
    response = alice_api.post(
        "/api/keys/",
        {
            "name": "",
            "allowed_models": ["gpt-9"],
            "expires_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"name", "allowed_models", "expires_at"}
    assert "Unknown model: gpt-9" in body["errors"]["allowed_models"][0]
    assert "future" in body["errors"]["expires_at"][0]
    assert body["detail"].startswith("name: ")
    assert alice.tenant.api_keys.count() == 1


def test_create_refuses_a_body_that_is_not_json(alice_api):
    response = alice_api.client.post(
        "/api/keys/", "name=x", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_members_cannot_create_keys(alice, carol_api):
    response = carol_api.post("/api/keys/", {"name": "mine"})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only owners of the tenant can create or revoke API keys.",
        "code": "permission_denied",
    }
    assert alice.tenant.api_keys.count() == 1


def test_members_list_and_read_keys(alice, carol_api):
    key = alice.tenant.api_keys.get()

    assert carol_api.get("/api/keys/").json()["results"][0]["id"] == key.pk
    assert carol_api.get(f"/api/keys/{key.pk}/").json()["name"] == key.name


def test_revoke_stops_the_key(alice, alice_api):
    key = alice.tenant.api_keys.get()

    response = alice_api.post(f"/api/keys/{key.pk}/revoke/")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_revoking_twice_keeps_the_first_time(alice, alice_api):
    key = alice.tenant.api_keys.get()
    first = alice_api.post(f"/api/keys/{key.pk}/revoke/").json()["revoked_at"]

    second = alice_api.post(f"/api/keys/{key.pk}/revoke/")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first


def test_members_cannot_revoke_keys(alice, carol_api):
    key = alice.tenant.api_keys.get()

    response = carol_api.post(f"/api/keys/{key.pk}/revoke/")

    assert response.status_code == 403
    assert "Only owners" in response.json()["detail"]
    key.refresh_from_db()
    assert key.revoked_at is None


def test_an_expired_key_says_so(alice, alice_api):
    key = alice.tenant.api_keys.get()
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())

    assert alice_api.get(f"/api/keys/{key.pk}/").json()["status"] == "expired"


def test_an_unknown_key_is_404(alice_api):
    response = alice_api.get("/api/keys/999999999/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_create_with_limits(alice, alice_api):
    response = alice_api.post(
        "/api/keys/",
        {"name": "ci", "rpm_limit": 60, "tpm_limit": 40000, "allowed_ips": ["::1"]},
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["rpm_limit"], body["tpm_limit"]) == (60, 40000)
    assert body["allowed_ips"] == ["::1/128"]

    refused = alice_api.post(
        "/api/keys/", {"name": "ci2", "rpm_limit": 0, "allowed_ips": ["nope"]}
    )
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"rpm_limit", "allowed_ips"}
    assert not ApiKey.objects.filter(name="ci2").exists()
