from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from api.services import token_create
from billing.models import Payment
from relay.models import UsageRecord
from tests import factories

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _forget_throttles():
    # Throttle history lives in the cache; a test must not inherit another's.
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match="*throttle_*"):
            client.delete(key)
        client.close()
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    _forget_throttles()
    yield
    _forget_throttles()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@dataclass
class Caller:
    """A person calling the API with a management token."""

    user: User
    secret: str
    client: APIClient

    def get(self, path, **params):
        return self.client.get(path, params, format="json")

    def post(self, path, data=None):
        return self.client.post(path, data, format="json")


def caller_for(user, tenant) -> Caller:
    _, secret = token_create(user=user, tenant=tenant, name=f"{user.email}'s token")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return Caller(user=user, secret=secret, client=client)


@pytest.fixture
def alice_api(alice) -> Caller:
    """Alice, owner of her tenant, with a management token."""
    return caller_for(alice.user, alice.tenant)


@pytest.fixture
def bob_api(bob) -> Caller:
    return caller_for(bob.user, bob.tenant)


@pytest.fixture
def carol(alice) -> User:
    """A member (not an owner) of Alice's tenant."""
    return factories.member(alice.tenant, "carol@example.com")


@pytest.fixture
def carol_api(alice, carol) -> Caller:
    """Carol signed in (session): members cannot create tokens."""
    client = APIClient()
    client.force_login(carol)
    return Caller(user=carol, secret="", client=client)


def make_usage(customer, n: int, **fields) -> UsageRecord:
    """Usage record `n` of `customer`, made `n` minutes after T0."""
    values = {
        "request_id": f"req_{customer.tenant.pk}_{n}",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": 72_000,
        "charged": 72_000,
        "created_at": T0 + timedelta(minutes=n),
        **fields,
    }
    return factories.usage_record(customer, **values)


def make_payment(customer, n: int, **fields) -> Payment:
    """Paid checkout `n` of `customer`, made `n` minutes after T0."""
    values = {
        "status": Payment.Status.PAID,
        "stripe_session_id": f"cs_test_{customer.tenant.pk}_{n}",
        "created_at": T0 + timedelta(minutes=n),
        **fields,
    }
    return factories.payment(customer, **values)
