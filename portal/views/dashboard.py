"""The signed-in home page: balance, spend, charts and recent errors."""

from django.shortcuts import render

from portal import selectors
from portal.access import tenant_view
from portal.charts import stacked_bars


@tenant_view
def dashboard(request):
    tenant = request.tenant
    days = selectors.chart_days()
    by_model = selectors.daily_spend_by_model(tenant=tenant, days=days)
    by_key = selectors.daily_spend_by_key(tenant=tenant, days=days)
    context = {
        "balance": selectors.wallet_balance(tenant=tenant),
        "periods": selectors.spend_windows(tenant=tenant, today=days[-1]),
        "model_chart": stacked_bars(
            by_model, title="Spend per day by model", what="model"
        ),
        "key_chart": stacked_bars(by_key, title="Spend per day by API key", what="key"),
        "errors": selectors.recent_errors(tenant=tenant),
    }
    return render(request, "portal/app/dashboard.html", context)
