"""The dashboard: balance, spend windows, charts, recent errors; few queries."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_key_create
from billing.models import Wallet
from charts import bars as charts
from portal import selectors
from portal.views.dashboard import spend_chart
from relay.models import UsageRecord
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def test_it_shows_paid_and_promotional_balance_with_the_expiry(signed_in, alice):
    expires = datetime(2031, 5, 17, tzinfo=UTC)
    Wallet.objects.filter(tenant=alice.tenant).update(
        balance=12_500_000_000, promo=2_000_000_000, promo_expires_at=expires
    )
    response = signed_in.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="balance"><span title="$12.500000000">$12.50</span><' in html
    assert (
        'data-testid="balance-paid"><span title="$10.500000000">$10.50</span><' in html
    )
    assert (
        'data-testid="balance-promo"><span title="$2.000000000">$2.00</span><' in html
    )
    assert "expires May 17, 2031" in html


def test_spend_windows_count_today_seven_and_thirty_days(alice):
    today = date(2025, 6, 30)
    noon = datetime(2025, 6, 30, 12, tzinfo=UTC)
    factories.usage_record(
        alice, created_at=noon, charged=100, prompt_tokens=1, completion_tokens=2
    )
    factories.usage_record(alice, created_at=noon - timedelta(days=6), charged=20)
    factories.usage_record(alice, created_at=noon - timedelta(days=7), charged=3)
    factories.usage_record(alice, created_at=noon - timedelta(days=29), charged=4000)
    factories.usage_record(alice, created_at=noon - timedelta(days=30), charged=50_000)
    tomorrow = noon + timedelta(days=1)
    factories.usage_record(alice, created_at=tomorrow, charged=0)  # not yet
    periods = selectors.spend_windows(tenant=alice.tenant, today=today)
    assert [(p.label, p.spend, p.requests) for p in periods] == [
        ("Today", 100, 2),
        ("Last 7 days", 120, 3),
        ("Last 30 days", 4123, 5),
    ]
    assert periods[0].tokens == 3 + 15


def test_daily_spend_groups_by_day_and_model_and_key(alice):
    second, _ = api_key_create(tenant=alice.tenant, name="batch")
    first = alice.tenant.api_keys.exclude(pk=second.pk).get()
    days = selectors.chart_days(today=date(2025, 6, 30))
    day = datetime(2025, 6, 29, 8, tzinfo=UTC)
    factories.usage_record(alice, created_at=day, charged=5, model="gpt-4.1")
    factories.usage_record(
        alice, created_at=day, charged=7, model="gpt-4.1", api_key=second
    )
    factories.usage_record(alice, created_at=day + timedelta(days=1), charged=11)
    factories.usage_record(
        alice, created_at=datetime(2025, 5, 31, tzinfo=UTC), charged=999
    )
    by_model = selectors.daily_spend_by_model(tenant=alice.tenant, days=days)
    assert by_model.series == {
        "gpt-4.1": {date(2025, 6, 29): 12},
        "gpt-4.1-mini": {date(2025, 6, 30): 11},
    }
    by_key = selectors.daily_spend_by_key(tenant=alice.tenant, days=days)
    assert by_key.series == {
        f"{first.name} ({first.prefix}…)": {
            date(2025, 6, 29): 5,
            date(2025, 6, 30): 11,
        },
        f"batch ({second.prefix}…)": {date(2025, 6, 29): 7},
    }


def test_the_charts_are_svg_with_tooltips_a_legend_and_a_table(signed_in, alice):
    factories.usage_record(alice, model="gpt-4.1", charged=1_500_000)
    factories.usage_record(alice, model="gpt-4.1-nano", charged=250)
    response = signed_in.get(reverse("dashboard"))
    html = response.content.decode()
    assert html.count('role="img"') == 2
    assert 'aria-label="Spend per day by model: $0.0015 over the last 30 days' in html
    today = timezone.localdate()
    label = f"{today:%b} {today.day}"
    assert f"<title>{label}, gpt-4.1: $0.0015</title>" in html
    assert f"<title>{label}, gpt-4.1-nano: $0.00000025</title>" in html
    assert "Spend per day by model as a table" in html
    assert '<td class="num">$0.0015</td>' in html


def test_a_chart_without_spend_says_so(signed_in, alice):
    html = signed_in.get(reverse("dashboard")).content.decode()
    assert 'role="img"' not in html
    assert "Spend per day by model: no spend in the last 30 days." in html
    assert 'data-testid="getting-started"' in html


def test_recent_errors_are_the_newest_ten_failures(signed_in, alice):
    start = timezone.now() - timedelta(hours=1)
    failures = [
        factories.usage_record(
            alice,
            status=UsageRecord.Status.UPSTREAM_ERROR,
            http_status=502,
            error=f"failure number {n}",
            created_at=start + timedelta(minutes=n),
        )
        for n in range(12)
    ]
    factories.usage_record(alice, error="not an error")
    response = signed_in.get(reverse("dashboard"))
    shown = [r.request_id for r in response.context["errors"]]
    assert shown == [r.request_id for r in reversed(failures)][:10]
    html = response.content.decode()
    assert "failure number 11" in html and "failure number 1<" not in html


def test_members_see_the_dashboard(client, alice):
    client.force_login(factories.member(alice.tenant, "mallory@example.com"))
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "Ask an owner" in response.content.decode()


def test_the_dashboard_takes_as_many_queries_for_40_rows_as_for_3(
    signed_in, alice, django_assert_max_num_queries
):
    now = timezone.now()
    counts = []
    for total in (3, 40):
        for n in range(UsageRecord.objects.count(), total):
            key, _ = api_key_create(tenant=alice.tenant, name=f"key {n}")
            factories.usage_record(
                alice,
                api_key=key,
                model=f"model-{n}",
                status="upstream_error",
                created_at=now - timedelta(days=n % 30),
            )
        # 11 before budgets, whose cards take one more.
        with django_assert_max_num_queries(12) as queries:
            response = signed_in.get(reverse("dashboard"))
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


class TestChartGeometry:
    def days(self, n=3):
        return selectors.chart_days(today=date(2025, 1, 3), days=n)

    def test_nice_steps_are_one_two_or_five_times_a_power_of_ten(self):
        assert charts.nice_step(4) == 1
        assert charts.nice_step(5) == 2
        assert charts.nice_step(1_500_000) == 500_000
        assert charts.nice_step(4_000_000_001) == 2_000_000_000

    def test_tick_labels_have_the_decimals_the_step_needs(self):
        assert charts.usd_tick(2_000_000_000, 1_000_000_000) == "$2.00"
        assert charts.usd_tick(1_500_000, 500_000) == "$0.0015"
        assert charts.usd_tick(30, 10) == "$0.00000003"

    def test_bars_stack_to_their_total_and_reach_the_top_tick(self):
        days = self.days()
        daily = selectors.DailySpend(
            days=days,
            series={"a": {days[0]: 300, days[2]: 100}, "b": {days[0]: 100}},
        )
        chart = spend_chart(daily, title="T", what="model")
        first = chart.columns[0]
        # 400 on the busiest day: a step of 100, so the top tick is 400.
        assert chart.ticks[-1].label == "$0.0000004"
        assert chart.ticks[-1].y == chart.plot_top
        # Stacked from the bottom, largest series first.
        assert first.rects[-1].y == chart.plot_top
        assert first.rects[0].y + first.rects[0].height == chart.plot_bottom
        assert sum(s.height for s in first.rects) == pytest.approx(chart.plot_height)
        assert [r.title for r in first.rects] == [
            "Jan 1, a: $0.00000030",
            "Jan 1, b: $0.00000010",
        ]
        assert chart.columns[1].rects == []
        assert [item.name for item in chart.legend] == ["a", "b"]
        assert [row[0] for row in chart.table_rows] == ["Jan 1", "Jan 3"]

    def test_small_series_fold_into_other(self):
        days = self.days(1)
        series = {f"m{n}": {days[0]: 100 - n} for n in range(8)}
        chart = spend_chart(
            selectors.DailySpend(days=days, series=series), title="T", what="model"
        )
        labels = [item.name for item in chart.legend]
        assert labels == ["m0", "m1", "m2", "m3", "m4", "Other"]
        assert chart.legend[-1].total == charts.usd(95 + 94 + 93)
        assert chart.legend[-1].color == charts.OTHER_COLOR
