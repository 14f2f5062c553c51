from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from charts import bars as charts
from charts.bars import usd
from console.access import console_view
from console.dashboard import PERIODS, dashboard
from console.payments import stuck_count
from console.views.base import render_console


def _count(value: int) -> str:
    return f"{value:,}"


@console_view()
@require_safe
def dashboard_view(request):
    figures = dashboard(period=request.GET.get("period", ""))
    labels = [bucket.label for bucket in figures.buckets]
    unit = f"{figures.period}s"
    buckets = figures.buckets
    money_chart = charts.grouped_bars(
        title=_("Revenue and spend"),
        labels=labels,
        series=[
            charts.Series(_("Revenue"), [b.revenue for b in buckets], "#0072B2"),
            charts.Series(_("Spend"), [b.spend for b in buckets], "#E69F00"),
        ],
        fmt=usd,
        unit=unit,
    )
    margin_chart = charts.grouped_bars(
        title=_("Spend, upstream cost and margin"),
        labels=labels,
        series=[
            charts.Series(_("Spend"), [b.spend for b in buckets], "#E69F00"),
            charts.Series(
                _("Upstream cost"), [b.upstream_cost for b in buckets], "#CC79A7"
            ),
            charts.Series(_("Margin"), [b.margin for b in buckets], "#009E73"),
        ],
        fmt=usd,
        unit=unit,
    )
    traffic_chart = charts.grouped_bars(
        title=_("Requests and errors"),
        labels=labels,
        series=[
            charts.Series(_("Requests"), [b.requests for b in buckets], "#56B4E9"),
            charts.Series(_("Errors"), [b.errors for b in buckets], "#D55E00"),
        ],
        fmt=_count,
        unit=unit,
    )
    tenants_chart = charts.horizontal_bars(
        title=_("Top tenants by spend"),
        items=[(row["tenant__name"], row["spend"]) for row in figures.top_tenants],
        fmt=usd,
        name=_("Spend"),
    )
    return render_console(
        request,
        "console/dashboard.html",
        _("Dashboard"),
        {
            "figures": figures,
            "periods": list(PERIODS),
            "money_chart": money_chart,
            "margin_chart": margin_chart,
            "traffic_chart": traffic_chart,
            "tenants_chart": tenants_chart,
            "uncosted": figures.total("uncosted"),
            "stuck_payments": stuck_count(),
            "stripe_enabled": bool(settings.STRIPE_SECRET_KEY),
        },
    )
