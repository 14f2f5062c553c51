from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_safe

from console import roles
from console.filters import filters_or_errors
from console.usage import (
    FILTER_PARAMS,
    cost_breakdown,
    usage_csv_rows,
    usage_explore,
    usage_filters_parse,
    usage_totals,
)
from console.views.base import page_of, render_console
from console.views.streaming import csv_response
from relay.models import Channel, UsageRecord


def _filters(request) -> tuple[dict, dict]:
    return filters_or_errors(usage_filters_parse, request.GET)


@roles.console_view()
@require_safe
def usage_list(request):
    filters, errors = _filters(request)
    context = {
        "errors": errors,
        "values": {name: request.GET.get(name, "") for name in FILTER_PARAMS},
        "statuses": ["error", *UsageRecord.Status.values],
        "channels": list(Channel.objects.order_by("name").values("pk", "name")),
    }
    if not errors:
        records = usage_explore(filters)
        context["page"] = page_of(request, records)
        context["totals"] = usage_totals(records)
    return render_console(
        request,
        "console/usage.html",
        "Usage explorer",
        context,
        status=400 if errors else 200,
    )


@roles.console_view()
@require_safe
def usage_detail(request, request_id: str):
    record = get_object_or_404(
        UsageRecord.objects.select_related("tenant", "api_key", "channel"),
        request_id=request_id,
    )
    return render_console(
        request,
        "console/usage_detail.html",
        f"Request {record.request_id}",
        {"record": record, "breakdown": cost_breakdown(record)},
    )


@roles.console_view()
@require_safe
def usage_export(request):
    filters, errors = _filters(request)
    if errors:
        return usage_list(request)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return csv_response(
        request, usage_csv_rows(usage_explore(filters)), f"usage-{stamp}.csv"
    )
