from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts import roles
from billing.models import ModelPrice, PriceChange
from billing.price_changes import (
    price_change_cancel,
    price_change_schedule,
    price_update_now,
)
from billing.price_import import PriceImportError, prices_import
from console.access import console_view
from console.forms import PriceForm, PriceImportForm, ReasonForm
from console.prices import price_csv_rows, price_rows_parse
from console.views.base import render_console
from exports.csv import csv_response


@console_view()
@require_safe
def price_list(request):
    prices = list(ModelPrice.objects.order_by("model"))
    pending = list(
        PriceChange.objects.filter(applied_at__isnull=True)
        .select_related("model_price", "created_by")
        .order_by("effective_at", "pk")
    )
    by_model: dict[int, list] = {}
    for change in pending:
        by_model.setdefault(change.model_price_id, []).append(change)
    return render_console(
        request,
        "console/prices.html",
        _("Prices"),
        {
            "rows": [(price, by_model.get(price.pk, [])) for price in prices],
            "pending": pending,
            "cancel_form": ReasonForm(prefix="cancel"),
            "now": timezone.now(),
        },
    )


@console_view(roles.MONEY)
def price_change(request, pk: int):
    price = get_object_or_404(ModelPrice, pk=pk)
    form = PriceForm(request.POST or None, model_price=price)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["effective_at"] is None:
                changed = price_update_now(
                    model_price=price,
                    prices=form.prices(),
                    settings={},
                    actor=request.user,
                    reason=data["reason"],
                )
                if changed:
                    messages.success(
                        request,
                        _("New prices for %(model)s from now.") % {"model": price},
                    )
                else:
                    messages.info(
                        request,
                        _("Those are %(model)s's prices already.") % {"model": price},
                    )
            else:
                price_change_schedule(
                    model_price=price,
                    effective_at=data["effective_at"],
                    values=form.prices(),
                    actor=request.user,
                    reason=data["reason"],
                )
                when = data["effective_at"].isoformat()
                messages.success(
                    request,
                    _("New prices for %(model)s from %(when)s.")
                    % {"model": price, "when": when},
                )
        except ValidationError as exc:
            price.refresh_from_db()
            _form_errors(form, exc)
        else:
            return redirect("console:prices")
    return render_console(
        request,
        "console/price_change.html",
        _("Change the prices of %(model)s") % {"model": price},
        {"price": price, "form": form},
        status=400 if form.errors else 200,
    )


def _form_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, errors in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@console_view(roles.MONEY)
@require_POST
def price_change_cancel_view(request, pk: int):
    change = get_object_or_404(PriceChange.objects.select_related("model_price"), pk=pk)
    form = ReasonForm(request.POST, prefix="cancel")
    if not form.is_valid():
        messages.error(request, _("Not cancelled: a reason is required."))
    elif price_change_cancel(
        change=change, actor=request.user, reason=form.cleaned_data["reason"]
    ):
        messages.success(
            request,
            _("Cancelled the change of %(model)s.") % {"model": change.model_price},
        )
    else:
        messages.warning(request, _("That change has already taken effect."))
    return redirect("console:prices")


@console_view()
@require_safe
def price_export(request):
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return csv_response(request, price_csv_rows(), f"prices-{stamp}.csv")


@console_view(roles.MONEY)
def price_import(request):
    form = PriceImportForm(request.POST or None, request.FILES or None)
    errors: list[tuple[int, str]] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = prices_import(
                rows=price_rows_parse(upload.read()),
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except PriceImportError as exc:
            errors = exc.errors
        else:
            messages.success(
                request,
                _(
                    "Imported: %(added)s added, %(changed)s changed now, "
                    "%(scheduled)s scheduled, %(unchanged)s unchanged."
                )
                % {
                    "added": len(result.created),
                    "changed": len(result.updated),
                    "scheduled": len(result.scheduled),
                    "unchanged": len(result.unchanged),
                },
            )
            return redirect("console:prices")
    return render_console(
        request,
        "console/price_import.html",
        _("Import prices"),
        {"form": form, "errors": errors},
        status=400 if errors or form.errors else 200,
    )
