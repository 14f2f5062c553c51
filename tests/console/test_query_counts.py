"""The console's pages make a bounded number of queries, however many rows."""

import pytest
from django.db import connection
from django.urls import reverse

from audit.services import audit_record
from relay.models import Channel
from tests.conftest import make_customer
from tests.console.conftest import usage_record


@pytest.fixture
def busy(alice, channel, support):
    """Many rows of every kind, so one query per row would show."""
    for i in range(3):
        other = Channel.objects.create(
            name=f"extra-{i}",
            kind=Channel.Kind.OPENAI,
            base_url="http://127.0.0.1:9/v1",
        )
        other.add_key(f"sk-extra-key-{i}")
        usage_record(alice, channel=other, error="boom", status="upstream_error")
    for i in range(5):
        customer = make_customer(f"tenant{i}")
        usage_record(customer, channel=channel)
        audit_record(
            actor=support, action="tenant.suspend", tenant=customer.tenant, summary="x"
        )
    for _ in range(25):
        usage_record(alice, channel=channel)


@pytest.mark.parametrize(
    ("name", "most"),
    [
        ("dashboard", 13),
        ("tenants", 7),
        ("channels", 11),
        ("usage", 10),
        ("payments", 9),
        ("audit", 9),
    ],
)
def test_list_pages(support_client, busy, django_assert_max_num_queries, name, most):
    if connection.vendor != "postgresql" and name in ("dashboard", "channels"):
        most += 1  # SQLite has no percentile_cont: one more query per page
    with django_assert_max_num_queries(most):
        assert support_client.get(reverse(f"console:{name}")).status_code == 200


def test_the_tenant_page(support_client, busy, alice, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):
        page = support_client.get(reverse("console:tenant", args=[alice.tenant.pk]))
    assert page.status_code == 200
