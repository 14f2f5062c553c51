"""The `auto` model's tier list (relay.auto): shown to staff, set by finance."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import roles
from console.access import console_view
from console.forms import ReasonForm
from console.views.base import render_console
from relay.auto import auto_tiers_set, tiers_clean, tiers_overview


class AutoTiersForm(ReasonForm):
    tiers = forms.CharField(
        label=gettext_lazy("Tiers, cheapest first"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 40}),
        help_text=gettext_lazy(
            "One model of the catalog per line. Empty: the auto model is off."
        ),
    )

    field_order = ["tiers", "reason"]

    def clean_tiers(self) -> list[str]:
        try:
            return tiers_clean(self.cleaned_data["tiers"].splitlines())
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


@console_view()
def auto_tiers(request):
    rows, default = tiers_overview()
    form = None
    if roles.can(request.user, roles.CHANNELS):
        initial = {"tiers": "\n".join(row.model for row in rows)}
        form = AutoTiersForm(request.POST or None, initial=initial)
    elif request.method == "POST":
        return roles.forbidden(request, roles.CHANNELS)
    if request.method == "POST" and form.is_valid():
        changed = auto_tiers_set(
            tiers=form.cleaned_data["tiers"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        if changed:
            messages.success(
                request, _("Saved: the relay uses the new tiers within seconds.")
            )
        else:
            messages.info(request, _("Those are the tiers already."))
        return redirect("console:auto_tiers")
    return render_console(
        request,
        "console/auto_tiers.html",
        _("Auto model"),
        {"rows": rows, "default": default, "form": form},
        status=400 if form is not None and form.errors else 200,
    )
