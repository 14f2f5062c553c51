"""The signed-in home page, and the guard every signed-in app page uses."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.tenancy import is_owner
from portal import selectors
from portal.charts import stacked_bars
from portal.context_processors import request_membership


def tenant_view(view=None, *, owner: bool = False):
    """
    Let signed-in members of a tenant in, setting `request.tenant` and
    `request.membership`; with `owner`, only the tenant's owners (403 for
    members). Signed-out visitors are sent to the login page.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = request_membership(request)
            if membership is None:
                raise PermissionDenied("This account is not a member of any tenant.")
            if owner and not is_owner(membership):
                raise PermissionDenied("Only the tenant's owners can do this.")
            request.membership = membership
            request.tenant = membership.tenant
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


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
