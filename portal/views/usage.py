"""The usage log: filtered, paginated, exported as CSV."""

import csv

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from portal import selectors
from portal.access import tenant_view
from portal.app_forms import UsageFilterForm
from relay.models import UsageRecord
from relay.selectors import (
    UsageFilterError,
    usage_csv_rows,
    usage_filtered,
    usage_filters_from,
)

PAGE_SIZE = 50


def _filters(request, keys) -> tuple[dict | None, dict[str, str]]:
    """Return the usage_filtered arguments of the query string, or None and
    the errors; a key of another tenant is an error, not an empty log."""
    try:
        filters = usage_filters_from(request.GET)
    except UsageFilterError as exc:
        return None, exc.errors
    key_id = filters["api_key_id"]
    if key_id is not None and key_id not in {key.pk for key in keys}:
        return None, {"key": "No API key of this tenant has this id."}
    return filters, {}


@tenant_view
def usage_list(request):
    keys = list(selectors.api_keys(tenant=request.tenant))
    form = UsageFilterForm(request.GET, keys=keys, models=selectors.served_models())
    filters, errors = _filters(request, keys)
    form.show_problems(errors)
    page = None
    if filters is not None:
        records = usage_filtered(tenant_id=request.tenant.pk, **filters)
        page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "errors": errors,
        "page": page,
        "query": query.urlencode(),
        "filtered": any(request.GET.get(name) for name in form.fields),
    }
    return render(request, "portal/app/usage/list.html", context)


@tenant_view
def usage_detail(request, request_id: str):
    record = get_object_or_404(
        UsageRecord.objects.select_related("api_key"),
        request_id=request_id,
        tenant=request.tenant,
    )
    return render(request, "portal/app/usage/detail.html", {"record": record})


class _Echo:
    """A file that hands back what is written: csv.writer's output, one row
    at a time, for a streaming response."""

    def write(self, value: str) -> str:
        return value


@tenant_view
def usage_csv(request):
    keys = list(selectors.api_keys(tenant=request.tenant))
    filters, errors = _filters(request, keys)
    if filters is None:
        form = UsageFilterForm(request.GET, keys=keys, models=selectors.served_models())
        form.show_problems(errors)
        context = {"form": form, "errors": errors, "page": None, "query": ""}
        return render(request, "portal/app/usage/list.html", context, status=400)
    records = usage_filtered(tenant_id=request.tenant.pk, **filters)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in usage_csv_rows(records)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="switchboard-usage-{timezone.localdate()}.csv"'
    )
    return response
