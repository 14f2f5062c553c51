import itertools

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts import roles
from accounts.models import User
from relay.models import UsageRecord


def make_staff(email: str, *groups: str, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(email, "staff password 123")
    user = User.objects.create_user(email, "staff password 123", is_staff=True)
    for name in groups:
        # The groups come from console's data migration; a transactional
        # test's flush removes them, so make sure they exist.
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def support(db) -> User:
    return make_staff("support@switchboard.test", roles.SUPPORT)


@pytest.fixture
def finance(db) -> User:
    return make_staff("finance@switchboard.test", roles.FINANCE)


@pytest.fixture
def superuser(db) -> User:
    return make_staff("root@switchboard.test", superuser=True)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def support_client(support) -> Client:
    return client_for(support)


@pytest.fixture
def finance_client(finance) -> Client:
    return client_for(finance)


_records = itertools.count(1)


def usage_record(customer, **fields) -> UsageRecord:
    """A usage record of `customer`'s key, as the relay writes them."""
    values = {
        "request_id": f"req_console_{next(_records)}",
        "tenant": customer.tenant,
        "api_key": customer.tenant.api_keys.first(),
        "model": "gpt-4.1-mini",
        "status": UsageRecord.Status.OK,
        "http_status": 200,
        "usage_source": UsageRecord.Source.REPORTED,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "input_price": 400,
        "output_price": 1600,
        "latency_ms": 100,
        "created_at": timezone.now(),
    }
    values.update(fields)
    return UsageRecord.objects.create(**values)
