"""API keys: shown once, stored as a digest, identified and revoked."""

import hashlib

import pytest
from asgiref.sync import async_to_sync

import config.db
from accounts import auth
from accounts.auth import identify
from accounts.models import ApiKey, Membership, Tenant
from accounts.services import api_key_create, api_key_revoke
from billing.models import LedgerEntry, Wallet
from onboarding.tenants import tenant_create
from tests import factories


@pytest.fixture(scope="module", autouse=True)
def _close_db_threads():
    # identify() looks keys up on config.db's threads; their connections
    # must close before the test database can be dropped.
    yield
    config.db.shutdown()


def test_it_shows_the_secret_once_and_stores_only_its_digest(alice):
    key, secret = api_key_create(tenant=alice.tenant, name="ci")
    assert secret.startswith("sk-sb-")
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    for field, value in stored.items():
        assert secret not in str(value), field
        # Nor the part of the secret after the displayed prefix.
        assert secret[12:] not in str(value), field
    assert stored["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert stored["prefix"] == secret[:12]
    assert len(stored["prefix"]) == 12


def test_every_key_gets_its_own_secret(alice):
    first, first_secret = api_key_create(tenant=alice.tenant, name="one")
    second, second_secret = api_key_create(tenant=alice.tenant, name="two")
    assert first_secret != second_secret
    assert first.digest != second.digest
    assert first.prefix.startswith("sk-sb-")


def test_it_remembers_what_the_key_may_do(alice):
    key, _ = api_key_create(
        tenant=alice.tenant,
        name="mini only",
        created_by=alice.user,
        allowed_models=["gpt-4.1-mini"],
    )
    key.refresh_from_db()
    assert key.tenant == alice.tenant
    assert key.created_by == alice.user
    assert key.allowed_models == ["gpt-4.1-mini"]
    assert key.revoked_at is None


@pytest.mark.django_db(transaction=True)
def test_it_identifies_a_key(alice, bob):
    key = ApiKey.objects.get(tenant=alice.tenant)
    identity = async_to_sync(identify)(alice.secret)
    assert identity is not None
    assert identity.key_id == key.pk
    assert identity.tenant_id == alice.tenant.pk
    assert identity.tenant_active
    assert identity.allowed_models == frozenset()
    assert identity.expires_at is None
    assert not identity.revoked
    assert async_to_sync(identify)(bob.secret).tenant_id == bob.tenant.pk


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_it_identifies_a_key_from_async_code(alice):
    identity = await identify(alice.secret)
    assert identity.tenant_id == alice.tenant.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "secret",
    [
        "sk-sb-" + "x" * 48,
        "sk-sb-",
        "sk-proj-abcdef",
        "",
        "Bearer sk-sb-abc",
    ],
)
def test_it_does_not_identify_an_unknown_key(alice, secret):
    assert async_to_sync(identify)(secret) is None


@pytest.mark.django_db(transaction=True)
def test_it_needs_the_whole_key(alice):
    assert async_to_sync(identify)(alice.secret[:-1]) is None
    assert async_to_sync(identify)(alice.secret[len("sk-sb-") :]) is None


@pytest.mark.django_db(transaction=True)
def test_it_reports_an_inactive_tenant(alice):
    Tenant.objects.filter(pk=alice.tenant.pk).update(is_active=False)
    assert not async_to_sync(identify)(alice.secret).tenant_active


@pytest.mark.django_db(transaction=True)
def test_it_sees_a_revocation_at_once_without_a_cache(alice, settings):
    settings.SWITCHBOARD_KEY_CACHE_SECONDS = 0
    key = ApiKey.objects.get(tenant=alice.tenant)
    assert not async_to_sync(identify)(alice.secret).revoked
    api_key_revoke(key=key)
    assert async_to_sync(identify)(alice.secret).revoked


@pytest.fixture
def clock(monkeypatch):
    """The key cache's clock, movable by tests."""
    now = [1_000.0]
    monkeypatch.setattr(auth, "clock", lambda: now[0])
    return now


@pytest.mark.django_db(transaction=True)
def test_it_sees_a_revocation_once_the_cache_expires(alice, bob, settings, clock):
    settings.SWITCHBOARD_KEY_CACHE_SECONDS = 1
    key = ApiKey.objects.get(tenant=alice.tenant)
    assert not async_to_sync(identify)(alice.secret).revoked
    assert not async_to_sync(identify)(bob.secret).revoked
    api_key_revoke(key=key)
    # Within the cache's lifetime the old answer stands...
    clock[0] += 0.9
    assert not async_to_sync(identify)(alice.secret).revoked
    clock[0] += 0.2
    # ...and then the revocation is seen. Bob's key is unaffected.
    assert async_to_sync(identify)(alice.secret).revoked
    assert not async_to_sync(identify)(bob.secret).revoked


@pytest.mark.django_db(transaction=True)
def test_a_revoked_key_stays_revoked(alice, settings):
    settings.SWITCHBOARD_KEY_CACHE_SECONDS = 0
    key = ApiKey.objects.get(tenant=alice.tenant)
    api_key_revoke(key=key)
    revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at
    api_key_revoke(key=ApiKey.objects.get(pk=key.pk))
    assert ApiKey.objects.get(pk=key.pk).revoked_at == revoked_at
    assert async_to_sync(identify)(alice.secret).revoked


def test_it_creates_a_tenant_with_a_wallet_and_an_owner(db):
    owner = factories.user("carol@example.com")
    tenant = tenant_create(name="Carol Corp", owner=owner)
    wallet = Wallet.objects.get(tenant=tenant)
    assert (wallet.balance, wallet.held) == (0, 0)
    membership = Membership.objects.get(tenant=tenant)
    assert membership.user == owner
    assert membership.role == Membership.Role.OWNER
    assert not LedgerEntry.objects.filter(tenant=tenant).exists()


def test_it_creates_a_tenant_without_an_owner(db):
    tenant = tenant_create(name="Unowned Corp")
    assert Wallet.objects.filter(tenant=tenant).exists()
    assert not Membership.objects.filter(tenant=tenant).exists()
