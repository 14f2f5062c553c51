from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from console.access import console_view
from console.usage import cost_breakdown, usage_csv_rows, usage_explored, usage_totals
from console.views.base import page_of, render_console
from exports.csv import csv_response
from relay.filters import STAFF_STATUSES
from relay.models import Channel, UsageRecord


@console_view()
@require_safe
def usage_list(request):
    usage = usage_explored(request.GET)
    errors = usage.problems
    context = {
        "errors": errors,
        "values": {name: request.GET.get(name, "") for name in usage.filters},
        "statuses": [status for status, _ in STAFF_STATUSES],
        "channels": list(Channel.objects.order_by("name").values("pk", "name")),
    }
    if not errors:
        context["page"] = page_of(request, usage.qs)
        context["totals"] = usage_totals(usage.qs)
    return render_console(
        request,
        "console/usage.html",
        _("Usage explorer"),
        context,
        status=400 if errors else 200,
    )


@console_view()
@require_safe
def usage_detail(request, request_id: str):
    record = get_object_or_404(
        UsageRecord.objects.select_related("tenant", "api_key", "channel"),
        request_id=request_id,
    )
    return render_console(
        request,
        "console/usage_detail.html",
        _("Request %(id)s") % {"id": record.request_id},
        {"record": record, "breakdown": cost_breakdown(record)},
    )


@console_view()
@require_safe
def usage_export(request):
    usage = usage_explored(request.GET)
    if not usage.is_valid():
        return usage_list(request)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return csv_response(request, usage_csv_rows(usage.qs), f"usage-{stamp}.csv")
