from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from console.access import console_view
from console.audit_log import audit_actions, audit_events, audit_filters_parse
from console.filters import filters_or_errors
from console.views.base import page_of, render_console

PARAMS = ("actor", "action", "tenant", "start", "end")


@console_view()
@require_safe
def audit_list(request):
    filters, errors = filters_or_errors(audit_filters_parse, request.GET)
    context = {
        "errors": errors,
        "values": {name: request.GET.get(name, "") for name in PARAMS},
        "actions": audit_actions(),
    }
    if not errors:
        context["page"] = page_of(request, audit_events(filters))
    return render_console(
        request,
        "console/audit.html",
        _("Audit log"),
        context,
        status=400 if errors else 200,
    )
