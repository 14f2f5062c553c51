from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from billing.models import Payment
from console.access import console_view
from console.filters import filters_or_errors
from console.payments import (
    EXTRA_STATUSES,
    clawbacks,
    last_reconciliation,
    payment_filters_parse,
    payment_rows,
    payments_filtered,
    stuck_count,
)
from console.views.base import page_of, render_console


@console_view()
@require_safe
def payment_list(request):
    filters, errors = filters_or_errors(payment_filters_parse, request.GET)
    context = {
        "errors": errors,
        "values": {
            n: request.GET.get(n, "") for n in ("status", "tenant", "start", "end")
        },
        "statuses": [*Payment.Status.choices, *[(s, s) for s in EXTRA_STATUSES]],
        "stuck": stuck_count(),
        "reconciliation": last_reconciliation(),
        "clawbacks": clawbacks(),
        "stripe_enabled": bool(settings.STRIPE_SECRET_KEY),
    }
    if not errors:
        page = page_of(request, payments_filtered(filters))
        context["page"] = page
        context["rows"] = payment_rows(list(page.object_list))
    return render_console(
        request,
        "console/payments.html",
        _("Payments"),
        context,
        status=400 if errors else 200,
    )
