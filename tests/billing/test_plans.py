"""Plans: a tenant's price multiplier applies to everything it is charged."""

from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts import auth
from audit.models import AuditEvent
from billing.models import Plan, Wallet
from billing.pricing import TokenUsage, plan_cost, usage_cost
from billing.selectors import wallet_drifts
from billing.staff import plan_assign
from relay.models import UsageRecord
from tests.fakes.upstream import expected_prompt_tokens

MESSAGES = [{"role": "user", "content": "price me please"}]


@given(
    cost=st.integers(min_value=0, max_value=10**15),
    multiplier=st.decimals(min_value="0.0001", max_value="99.9999", places=4),
)
def test_plan_cost_is_the_exact_product_rounded_to_the_nearest_nano(cost, multiplier):
    exact = Decimal(cost) * multiplier
    result = plan_cost(cost, multiplier)
    assert abs(Decimal(result) - exact) <= Decimal("0.5")


def test_catalog_prices_are_unchanged_at_one():
    assert plan_cost(123_456_789, Decimal("1.0000")) == 123_456_789


def test_plans_are_seeded(db):
    # Reads the migration's rows: `db` tests run before transactional ones,
    # whose flush would delete them.
    plans = dict(Plan.objects.values_list("name", "multiplier"))
    assert plans == {"standard": Decimal("1.0000"), "volume": Decimal("0.8500")}


@pytest.fixture
def plans(db):
    for name, multiplier in (("standard", "1.0000"), ("volume", "0.8500")):
        Plan.objects.get_or_create(name=name, defaults={"multiplier": multiplier})


def chat(relay, secret):
    return httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1", "messages": MESSAGES, "max_tokens": 50},
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


@pytest.mark.parametrize("plan_name", ["standard", "volume"])
def test_charges_follow_the_tenants_plan(relay, channel, alice, plans, plan_name):
    plan = Plan.objects.get(name=plan_name)
    staff = alice.user  # any user; the audit row records who
    plan_assign(tenant=alice.tenant, plan=plan, actor=staff, reason="negotiated")
    auth.forget_cached_keys()
    before = alice.wallet.balance

    response = chat(relay, alice.secret)
    assert response.status_code == 200, response.text

    record = UsageRecord.objects.get()
    usage = TokenUsage(
        prompt=expected_prompt_tokens(MESSAGES),
        completion=response.json()["usage"]["completion_tokens"],
        requests=1,
    )
    catalog = usage_cost(usage, record.unit_prices())
    assert record.price_multiplier == plan.multiplier
    assert record.cost == plan_cost(catalog, plan.multiplier)
    if plan_name == "volume":
        assert record.cost < catalog
    assert before - alice.wallet.balance == record.charged == record.cost
    assert AuditEvent.objects.filter(action="tenant.plan", tenant=alice.tenant).count()
    assert wallet_drifts() == []


def test_assigning_the_current_plan_again_changes_nothing(alice, plans):
    volume = Plan.objects.get(name="volume")
    plan_assign(tenant=alice.tenant, plan=volume, actor=None, reason="volume deal")
    plan_assign(tenant=alice.tenant, plan=volume, actor=None, reason="volume deal")
    assert Wallet.objects.get(tenant=alice.tenant).plan == volume
    assert AuditEvent.objects.filter(action="tenant.plan").count() == 1
