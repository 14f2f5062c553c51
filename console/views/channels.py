from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts import roles
from console.access import console_view
from console.channels import channels_health
from console.forms import ReasonForm
from console.views.base import render_console
from relay.channels import channel_enable
from relay.models import Channel
from relay.probes import channel_check


@console_view()
@require_safe
def channel_list(request):
    return render_console(
        request,
        "console/channels.html",
        _("Channels"),
        {"rows": channels_health(), "toggle_form": ReasonForm(prefix="toggle")},
    )


@console_view(roles.CHANNELS)
@require_POST
def channel_test(request, pk: int):
    channel = get_object_or_404(Channel, pk=pk)
    result = channel_check(channel)
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(
        request,
        level,
        _("Test of %(channel)s: %(result)s")
        % {"channel": channel.name, "result": result},
    )
    return redirect("console:channels")


@console_view(roles.CHANNELS)
@require_POST
def channel_toggle(request, pk: int):
    channel = get_object_or_404(Channel, pk=pk)
    form = ReasonForm(request.POST, prefix="toggle")
    if not form.is_valid():
        messages.error(
            request,
            _("%(channel)s is unchanged: a reason is required.")
            % {"channel": channel.name},
        )
        return redirect("console:channels")
    enable = not channel.is_enabled
    if channel_enable(
        channel=channel,
        enabled=enable,
        actor=request.user,
        reason=form.cleaned_data["reason"],
    ):
        done = _("%(channel)s is enabled.") if enable else _("%(channel)s is disabled.")
        messages.success(request, done % {"channel": channel.name})
    return redirect("console:channels")
