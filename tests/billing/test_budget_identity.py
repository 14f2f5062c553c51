"""The cached key lookup tells whether a key's requests count budgets."""

import asyncio

import pytest

from accounts import auth
from accounts.models import ApiKey
from accounts.services import api_key_create
from billing.budgets import budgets_set
from billing.money import usd_to_nano

CAP = usd_to_nano("1")
# The lookup runs on a database thread: the test's data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def identity(secret: str) -> auth.KeyIdentity:
    auth.forget_cached_keys()
    return asyncio.run(auth.identify(secret))


def test_a_key_without_budgets_has_none(alice, bob):
    budgets_set(tenant=bob.tenant, caps={"daily": CAP})
    budgets_set(
        tenant=bob.tenant,
        key=ApiKey.objects.get(tenant=bob.tenant),
        caps={"daily": CAP},
    )

    assert identity(alice.secret).has_budgets is False


def test_a_key_budget_is_its_keys_alone(alice):
    _, other = api_key_create(tenant=alice.tenant, name="ci", created_by=alice.user)
    key = ApiKey.objects.get(tenant=alice.tenant, name="alice's key")
    budgets_set(tenant=alice.tenant, key=key, caps={"monthly": CAP})

    assert identity(alice.secret).has_budgets is True
    assert identity(other).has_budgets is False


def test_a_tenant_budget_binds_every_key(alice):
    _, other = api_key_create(tenant=alice.tenant, name="ci", created_by=alice.user)
    budgets_set(tenant=alice.tenant, caps={"lifetime": CAP})

    assert identity(alice.secret).has_budgets is True
    assert identity(other).has_budgets is True


def test_setting_a_budget_drops_this_processes_cached_keys(alice):
    assert asyncio.run(auth.identify(alice.secret)).has_budgets is False

    budgets_set(tenant=alice.tenant, caps={"daily": CAP})

    assert asyncio.run(auth.identify(alice.secret)).has_budgets is True
