import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from console import roles


def _staff(email: str, *groups: str, superuser: bool = False) -> User:
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
    return _staff("support@switchboard.test", roles.SUPPORT)


@pytest.fixture
def finance(db) -> User:
    return _staff("finance@switchboard.test", roles.FINANCE)


@pytest.fixture
def superuser(db) -> User:
    return _staff("root@switchboard.test", superuser=True)


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
