import itertools

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import roles
from accounts.models import User
from relay.models import UsageRecord
from tests.accounts.totp import current_code


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


@pytest.fixture(autouse=True)
def _staff_second_factor_on(settings):
    """The console's tests run as production does: staff need their second
    factor (off by default in debug mode), so every staff client below
    gives it through the real enrolment form."""
    settings.SWITCHBOARD_STAFF_2FA = True


def client_for(user: User) -> Client:
    """A signed-in client; a staff member's has enrolled an authenticator
    and given its code, as at their first login."""
    client = Client()
    client.force_login(user)
    if roles.is_staff(user):
        enrol_second_factor(client, user)
    return client


def enrol_second_factor(client: Client, user: User) -> list[str]:
    """Enrol `user`'s authenticator through the enrolment page, with a code
    computed from the key it shows; return the recovery codes shown."""
    page = client.get(reverse("twofactor:enrol"))
    assert page.status_code == 200, page.status_code
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    shown = client.post(
        reverse("twofactor:enrol"), {"code": current_code(device), "next": "/"}
    )
    assert shown.status_code == 200
    assert client.session.get("otp_device_id"), "the session is not verified"
    return shown.context["codes"]


@pytest.fixture
def admin_client(admin_user) -> Client:
    """pytest-django's admin client, with its second factor given."""
    return client_for(admin_user)


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
