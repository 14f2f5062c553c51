"""List endpoints cost the same few queries whatever the number of rows."""

import pytest

from accounts.services import api_key_create
from api.services import token_create
from billing.models import LedgerEntry
from billing.services import wallet_credit
from tests.api.conftest import make_payment, make_usage

# Token and membership lookups, last_used_at, the page: a fixed budget.
MAX_QUERIES = 5


def add_rows(customer, count: int) -> None:
    tenant = customer.tenant
    for n in range(count):
        key, _ = api_key_create(
            tenant=tenant, name=f"key {n}", created_by=customer.user
        )
        make_usage(customer, n, api_key=key)
        make_payment(customer, n)
        wallet_credit(
            tenant_id=tenant.pk,
            amount=n,
            kind=LedgerEntry.Kind.GRANT,
            reference=f"row:{tenant.pk}:{n}",
        )
        token_create(user=customer.user, tenant=tenant, name=f"token {n}")


@pytest.mark.parametrize(
    "path",
    ["/api/keys/", "/api/usage/", "/api/ledger/", "/api/payments/", "/api/tokens/"],
)
def test_list_queries_do_not_grow_with_rows(
    alice, bob, alice_api, bob_api, django_assert_max_num_queries, path
):
    add_rows(alice, 3)
    add_rows(bob, 30)

    with django_assert_max_num_queries(MAX_QUERIES) as few:
        few_rows = alice_api.get(path)
    with django_assert_max_num_queries(MAX_QUERIES) as many:
        many_rows = bob_api.get(path)

    assert len(few_rows.json()["results"]) >= 3
    assert len(many_rows.json()["results"]) >= 30
    assert len(many) == len(few)


def test_the_balance_costs_a_few_queries(alice_api, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_QUERIES):
        assert alice_api.get("/api/balance/").status_code == 200
