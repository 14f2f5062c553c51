"""The portal: a key's in-flight limit, and refused requests shown by key
and code on the dashboard and the usage page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create
from relay.models import RefusalCount


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def test_a_key_is_created_with_an_in_flight_limit(signed_in, alice):
    response = signed_in.post(
        reverse("key_create"), {"name": "agents", "max_in_flight": "3"}
    )

    assert response.status_code == 200
    key = ApiKey.objects.get(name="agents")
    assert key.max_in_flight == 3
    listed = signed_in.get(reverse("keys")).content.decode()
    assert "3 at once" in listed


def test_an_in_flight_limit_must_be_positive(signed_in):
    response = signed_in.post(
        reverse("key_create"), {"name": "x", "max_in_flight": "0"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["max_in_flight"]
    assert not ApiKey.objects.filter(name="x").exists()


@pytest.fixture
def refused(alice, bob):
    key = alice.tenant.api_keys.get()
    other, _ = api_key_create(tenant=alice.tenant, name="nightly batch")
    now = timezone.now()
    for api_key, code, status, count in [
        (key, "rate_limit_exceeded", 429, 7),
        (other, "concurrency_limit_exceeded", 429, 2),
    ]:
        RefusalCount.objects.create(
            tenant=alice.tenant,
            api_key=api_key,
            minute=now - timedelta(minutes=1),
            status=status,
            code=code,
            count=count,
        )
    RefusalCount.objects.create(
        tenant=bob.tenant,
        api_key=bob.tenant.api_keys.get(),
        minute=now,
        status=402,
        code="insufficient_balance",
        count=5,
    )
    return key, other


def rows(html: str) -> list[str]:
    table = html.split('data-testid="refusals-table"', 1)[1].split("</table>", 1)[0]
    return [" ".join(row.split()) for row in table.split("<tr>")[2:]]


def test_the_dashboard_shows_refusals_by_key_and_code(signed_in, refused):
    html = signed_in.get(reverse("dashboard")).content.decode()

    shown = rows(html)
    assert len(shown) == 2
    assert "alice&#x27;s key" in shown[0] and "rate_limit_exceeded" in shown[0]
    assert '<td class="num">7</td>' in shown[0]
    assert "nightly batch" in shown[1] and "concurrency_limit_exceeded" in shown[1]
    assert "insufficient_balance" not in html  # Bob's


def test_the_usage_page_shows_the_filtered_keys_refusals(signed_in, refused):
    key, other = refused

    everything = rows(signed_in.get(reverse("usage")).content.decode())
    one = rows(signed_in.get(reverse("usage"), {"key": other.pk}).content.decode())

    assert len(everything) == 2
    assert len(one) == 1 and "concurrency_limit_exceeded" in one[0]


def test_nothing_refused_says_so(signed_in):
    html = signed_in.get(reverse("dashboard")).content.decode()
    assert "No requests were refused in the last 24 hours." in html
