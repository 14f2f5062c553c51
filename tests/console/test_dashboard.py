"""The dashboard's figures are exactly what the test's payments and usage add
up to, in nano-USD."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry
from billing.services import wallet_credit
from charts.bars import HEIGHT, MARGIN_BOTTOM, MARGIN_TOP, Series, grouped_bars
from console.dashboard import bucket_starts, dashboard
from portal.templatetags.switchboard import usd
from relay.models import Channel, UsageRecord
from tests.conftest import make_customer
from tests.console.conftest import usage_record

NANO_PER_CENT = 10_000_000


@pytest.fixture
def second_channel(db, channel) -> Channel:
    return Channel.objects.create(
        name="second", kind=Channel.Kind.OPENAI, base_url="http://127.0.0.1:9/v1"
    )


@pytest.fixture
def business(alice, bob, channel, second_channel, stripe_flow, fake_stripe):
    """Payments (with a refund and a dispute) and usage, with known totals."""
    paid = stripe_flow.pay(alice, 50)
    refund = fake_stripe.charge_refunded(paid.stripe_session_id, 1000)
    assert stripe_flow.deliver(refund).status_code == 200
    disputed = stripe_flow.pay(bob, 20)
    dispute = fake_stripe.dispute_created(disputed.stripe_session_id, 2000)
    assert stripe_flow.deliver(dispute).status_code == 200
    # Open and never paid: no revenue.
    stripe_flow.start(alice, 100)

    records = [
        usage_record(
            alice,
            channel=channel,
            charged=1_234_567,
            cost=1_234_567,
            upstream_cost=1_000_001,
            latency_ms=100,
        ),
        usage_record(
            alice,
            channel=channel,
            charged=2_000_000,
            cost=2_000_000,
            upstream_cost=1_500_000,
            latency_ms=200,
        ),
        usage_record(
            bob,
            channel=channel,
            charged=333,
            cost=333,
            upstream_cost=None,
            latency_ms=300,
        ),
        usage_record(
            bob,
            channel=second_channel,
            model="gpt-4.1",
            charged=7,
            cost=7,
            upstream_cost=3,
            latency_ms=400,
        ),
        # Refused by the upstream: nothing used, nothing charged.
        usage_record(
            bob,
            channel=second_channel,
            model="gpt-4.1",
            status=UsageRecord.Status.UPSTREAM_ERROR,
            http_status=502,
            usage_source=UsageRecord.Source.NONE,
            prompt_tokens=0,
            completion_tokens=0,
            upstream_cost=None,
            latency_ms=50,
            error="upstream unavailable",
        ),
    ]
    # Long ago: outside the daily and weekly ranges, inside the monthly one.
    usage_record(
        alice,
        channel=channel,
        charged=5_000_000_000,
        cost=5_000_000_000,
        upstream_cost=1,
        created_at=timezone.now() - timedelta(days=100),
    )
    return {"records": records}


REVENUE = (5000 - 1000 + 2000 - 2000) * NANO_PER_CENT
SPEND = 1_234_567 + 2_000_000 + 333 + 7
UPSTREAM = 1_000_001 + 1_500_000 + 3


def test_revenue_spend_upstream_cost_and_margin_are_exact(business):
    figures = dashboard(period="day")

    assert figures.revenue == REVENUE
    assert figures.spend == SPEND
    assert figures.upstream_cost == UPSTREAM
    assert figures.margin == SPEND - UPSTREAM
    # bob's 333 nano-USD request: its channel has no cost price for the model.
    assert figures.total("uncosted") == 1
    assert figures.requests == 5
    assert figures.errors == 1
    today = figures.buckets[-1]
    assert (today.revenue, today.spend, today.upstream_cost) == (
        REVENUE,
        SPEND,
        UPSTREAM,
    )
    assert sum(b.spend for b in figures.buckets[:-1]) == 0


def test_the_period_switch_changes_the_range(business):
    assert dashboard(period="week").spend == SPEND
    month = dashboard(period="month")
    assert month.spend == SPEND + 5_000_000_000
    assert month.upstream_cost == UPSTREAM + 1
    assert len(month.buckets) == 12


def test_traffic_per_channel_and_model_with_latency_percentiles(business, channel):
    figures = dashboard()
    by_channel = {row.label: row for row in figures.channels}
    first = by_channel["fake-openai"]
    assert (first.requests, first.errors, first.tokens) == (3, 0, 45)
    # percentile_cont of 100, 200, 300 ms.
    assert (first.p50, first.p95) == (200.0, pytest.approx(290.0))
    assert first.spend == 1_234_567 + 2_000_000 + 333
    second = by_channel["second"]
    assert (second.requests, second.errors) == (2, 1)
    assert second.error_rate == 0.5
    assert (second.p50, second.p95) == (225.0, pytest.approx(382.5))
    by_model = {row.label: row for row in figures.models}
    assert by_model["gpt-4.1"].requests == 2
    assert by_model["gpt-4.1-mini"].requests == 3


def test_top_tenants_promo_and_wallets_below_zero(business, alice, bob):
    carol = make_customer("carol", usd="")
    wallet_credit(
        tenant_id=carol.tenant.pk,
        amount=-123,
        kind=LedgerEntry.Kind.USAGE,
        reference="usage:carol-overdraft",
    )
    wallet_credit(
        tenant_id=bob.tenant.pk,
        amount=750,
        promo_amount=750,
        kind=LedgerEntry.Kind.STARTER,
        reference="starter:bob",
    )
    figures = dashboard()
    assert [row["tenant__name"] for row in figures.top_tenants] == [
        "Alice Corp",
        "Bob Corp",
    ]
    assert figures.top_tenants[0]["spend"] == 3_234_567
    assert figures.promo_outstanding == 750
    assert figures.below_zero_count == 1
    assert figures.below_zero_total == -123
    assert [w.tenant for w in figures.below_zero] == [carol.tenant]


def test_the_dashboard_uses_a_handful_of_queries(
    business, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        dashboard()


def figure(text: str, name: str) -> str:
    match = re.search(rf'id="figure-{name}">(.*?)</dd>', text)
    assert match, name
    return match.group(1)


def test_the_page_shows_the_figures_and_accessible_charts(finance_client, business):
    page = finance_client.get(reverse("console:dashboard"))
    text = page.content.decode()

    assert page.status_code == 200
    # Rounded for reading, exact on hover.
    assert (
        figure(text, "revenue")
        == usd(REVENUE)
        == '<span title="$40.000000000">$40.00</span>'
    )
    assert (
        figure(text, "spend")
        == usd(SPEND)
        == '<span title="$0.003234907">$0.0032</span>'
    )
    assert (
        figure(text, "upstream-cost")
        == usd(UPSTREAM)
        == '<span title="$0.002500004">$0.0025</span>'
    )
    assert (
        figure(text, "margin")
        == usd(SPEND - UPSTREAM)
        == '<span title="$0.000734903">$0.00073</span>'
    )
    assert figure(text, "uncosted") == "1"
    assert text.count('role="img"') >= 4
    assert 'aria-label="Revenue and spend, 30 days.' in text
    # The table under each chart carries the same figures, as text.
    assert "Spend, upstream cost and margin as a table" in text
    assert '<td class="num">$0.0032</td>' in text
    assert "<script" not in text.split('id="content"')[1]


def test_buckets_cover_the_range_up_to_today():
    now = timezone.now()
    days = bucket_starts("day", now)
    assert len(days) == 30 and days[-1] == timezone.localtime(now).date()
    weeks = bucket_starts("week", now)
    assert len(weeks) == 12 and all(day.weekday() == 0 for day in weeks)
    months = bucket_starts("month", now)
    assert len(months) == 12 and all(day.day == 1 for day in months)
    assert months[-1].month == timezone.localtime(now).month


def test_a_negative_margin_is_drawn_below_the_zero_line():
    chart = grouped_bars(
        title="Margin",
        labels=["Mon", "Tue"],
        series=[Series("Margin", [300, -120])],
        fmt=str,
    )
    up, down = chart.rects
    assert MARGIN_TOP <= chart.zero_y <= HEIGHT - MARGIN_BOTTOM
    assert up.y + up.height == pytest.approx(chart.zero_y)
    assert down.y == pytest.approx(chart.zero_y) and down.height > 0
    assert up.height > down.height
    labels = [tick.label for tick in chart.ticks]
    assert "0" in labels and int(labels[0]) <= -120 and int(labels[-1]) >= 300
    assert chart.table_rows == [["Mon", "300"], ["Tue", "-120"]]
    assert chart.aria_label == "Margin, 2 periods. Totals: Margin 180."
