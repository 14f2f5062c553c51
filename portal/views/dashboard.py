"""The signed-in home page: balance, spend, charts and recent errors."""

from django.shortcuts import render
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _

from billing import budgets
from charts.bars import BarChart, Series, stacked_bars
from portal import selectors
from portal.access import tenant_view
from relay import refusals

# An x-axis label every this many days, counted back from today.
LABEL_EVERY = 7


def spend_chart(daily: selectors.DailySpend, *, title: str, what: str) -> BarChart:
    """Spend per day stacked by `what` (model or key)."""
    return stacked_bars(
        title=title,
        labels=[date_format(day, _("M j")) for day in daily.days],
        series=[
            Series(name, [per_day.get(day, 0) for day in daily.days])
            for name, per_day in daily.series.items()
        ],
        what=what,
        label_every=LABEL_EVERY,
    )


@tenant_view
def dashboard(request):
    tenant = request.tenant
    days = selectors.chart_days()
    by_model = selectors.daily_spend_by_model(tenant=tenant, days=days)
    by_key = selectors.daily_spend_by_key(tenant=tenant, days=days)
    context = {
        "balance": selectors.wallet_balance(tenant=tenant),
        "budgets": dict(
            zip(
                ("tenant", "keys"),
                budgets.budgets_of_tenant(tenant_id=tenant.pk),
                strict=True,
            )
        ),
        "periods": selectors.spend_windows(tenant=tenant, today=days[-1]),
        "model_chart": spend_chart(
            by_model, title=_("Spend per day by model"), what="model"
        ),
        "key_chart": spend_chart(
            by_key, title=_("Spend per day by API key"), what="key"
        ),
        "errors": selectors.recent_errors(tenant=tenant),
        "refusals": refusals.last_day(tenant.pk),
        "cache": selectors.cache_use(tenant=tenant, today=days[-1]),
    }
    return render(request, "portal/app/dashboard.html", context)
