"""The usage log: filtered, paginated, exported as CSV."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from console.usage import cost_breakdown
from exports.csv import csv_response
from portal import selectors
from portal.access import tenant_view
from portal.app_forms import UsageFilterSet
from relay import refusals
from relay.models import UsageRecord
from relay.selectors import usage_csv_rows

PAGE_SIZE = 50


def _usage(request) -> UsageFilterSet:
    return UsageFilterSet(
        request.GET,
        tenant=request.tenant,
        keys=list(selectors.api_keys(tenant=request.tenant)),
        models=selectors.served_models(),
    )


def _list(request, usage: UsageFilterSet, *, page=None, status=200):
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": usage,
        "errors": usage.problems,
        "page": page,
        "query": query.urlencode(),
        "filtered": any(request.GET.get(name) for name in usage.filters),
        "refusals": refusals.last_day(request.tenant.pk, key_id=_key_shown(usage)),
    }
    return render(request, "portal/app/usage/list.html", context, status=status)


def _key_shown(usage: UsageFilterSet) -> int | None:
    """The key the log is filtered by, if a valid one."""
    if not usage.is_valid():
        return None
    key = usage.form.cleaned_data.get("key")
    return getattr(key, "pk", key) or None


@tenant_view
def usage_list(request):
    usage = _usage(request)
    if not usage.is_valid():
        return _list(request, usage)
    page = Paginator(usage.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return _list(request, usage, page=page)


@tenant_view
def usage_detail(request, request_id: str):
    record = get_object_or_404(
        UsageRecord.objects.select_related("api_key"),
        request_id=request_id,
        tenant=request.tenant,
    )
    return render(
        request,
        "portal/app/usage/detail.html",
        # The console's breakdown, without its upstream cost and margin.
        {"record": record, "breakdown": cost_breakdown(record)},
    )


@tenant_view
def usage_csv(request):
    usage = _usage(request)
    if not usage.is_valid():
        return _list(request, usage, status=400)
    filename = f"switchboard-usage-{timezone.localdate()}.csv"
    return csv_response(request, usage_csv_rows(usage.qs), filename)
