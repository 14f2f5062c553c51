"""Billing: top-up through Stripe Checkout, payments, ledger, codes, alerts."""

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import throttles
from billing.alerts import low_balance_threshold_set
from billing.models import Payment
from billing.money import NANO_PER_USD, usd_to_nano
from billing.payments import (
    CheckoutFailed,
    TopUpAmountError,
    cents_to_nano,
    checkout_start,
)
from billing.redemption import RedemptionError, code_redeem
from billing.stripe_api import StripeNotConfigured
from billing.views import topup_return_urls
from portal import selectors
from portal.access import tenant_view
from portal.app_forms import AlertThresholdForm, RedeemForm, TopUpForm
from portal.templatetags.switchboard import usd_text
from portal.views.public import site_url

logger = logging.getLogger(__name__)

LEDGER_PAGE_SIZE = 50
PAYMENTS_PAGE_SIZE = 25
RECENT_PAYMENTS = 5


def _with_amounts(payments):
    """Give each payment its amount in nano-USD for the `usd` filter."""
    payments = list(payments)
    for payment in payments:
        payment.amount_nano = cents_to_nano(payment.amount_cents)
        payment.refunded_nano = cents_to_nano(payment.refunded_cents)
        payment.disputed_nano = cents_to_nano(payment.disputed_cents)
    return payments


def _overview(request, *, status: int = 200, **forms):
    balance = selectors.wallet_balance(tenant=request.tenant)
    threshold = balance.low_balance_threshold
    initial = {"threshold": Decimal(threshold) / NANO_PER_USD} if threshold else {}
    context = {
        "balance": balance,
        "topup_form": forms.get("topup_form") or TopUpForm(),
        "redeem_form": forms.get("redeem_form") or RedeemForm(),
        "alert_form": forms.get("alert_form") or AlertThresholdForm(initial=initial),
        "payments": _with_amounts(
            selectors.payments(tenant=request.tenant)[:RECENT_PAYMENTS]
        ),
        "invite_url": site_url(request)
        + reverse("signup")
        + f"?ref={request.tenant.referral_code}",
        "referral_reward": usd_to_nano(settings.SWITCHBOARD_REFERRAL_REWARD_USD),
        # Without Stripe the page offers no top-up it could not complete.
        "stripe_enabled": bool(settings.STRIPE_SECRET_KEY),
    }
    return render(request, "portal/app/billing/overview.html", context, status=status)


@require_GET
@tenant_view
def billing(request):
    return _overview(request)


@require_POST
@tenant_view(owner=True)
def topup(request):
    form = TopUpForm(request.POST)
    if not form.is_valid():
        return _overview(request, status=400, topup_form=form)
    success_url, cancel_url = topup_return_urls(request)
    try:
        payment = checkout_start(
            tenant=request.tenant,
            user=request.user,
            amount_cents=form.cleaned_data["amount_cents"],
            success_url=success_url,
            cancel_url=cancel_url,
        )
    except TopUpAmountError as exc:
        form.add_error(None, str(exc))
        return _overview(request, status=400, topup_form=form)
    except StripeNotConfigured:
        logger.error("Top-up attempted but Stripe is not configured")
        form.add_error(None, "Card payments are not available on this server yet.")
        return _overview(request, status=503, topup_form=form)
    except CheckoutFailed as exc:
        form.add_error(None, str(exc))
        return _overview(request, status=502, topup_form=form)
    return redirect(payment.checkout_url)


@require_POST
@tenant_view(owner=True)
def redeem(request):
    form = RedeemForm(request.POST)
    if not form.is_valid():
        return _overview(request, status=400, redeem_form=form)
    if not throttles.REDEMPTIONS.hit(str(request.tenant.pk)):
        form.add_error(
            "code",
            _("Too many attempts to redeem a code. Please wait an hour and try again."),
        )
        return _overview(request, status=429, redeem_form=form)
    try:
        entry = code_redeem(
            tenant=request.tenant, code=form.cleaned_data["code"], user=request.user
        )
    except RedemptionError as exc:
        form.add_error("code", str(exc))
        return _overview(request, status=400, redeem_form=form)
    messages.success(
        request,
        _("Code redeemed: %(amount)s added to the balance.")
        % {"amount": usd_text(entry.amount)},
    )
    return redirect("billing")


@require_POST
@tenant_view(owner=True)
def alert_threshold(request):
    form = AlertThresholdForm(request.POST)
    if not form.is_valid():
        return _overview(request, status=400, alert_form=form)
    threshold = form.threshold_nano()
    low_balance_threshold_set(tenant=request.tenant, threshold=threshold)
    if threshold is None:
        messages.success(request, _("Low-balance alerts are off."))
    else:
        messages.success(
            request,
            _("The owners will get an email when the balance falls below %(amount)s.")
            % {"amount": usd_text(threshold)},
        )
    return redirect("billing")


@require_GET
@tenant_view
def ledger(request):
    rows = selectors.ledger_with_running_balance(tenant=request.tenant)
    page = Paginator(rows, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page:
        # Usage rows are referenced "usage:<request id>": link the request.
        kind, _, rest = entry.reference.partition(":")
        entry.request_id = rest if entry.kind == "usage" and kind == "usage" else ""
    return render(request, "portal/app/billing/ledger.html", {"page": page})


@require_GET
@tenant_view
def payment_list(request):
    page = Paginator(selectors.payments(tenant=request.tenant), PAYMENTS_PAGE_SIZE)
    page = page.get_page(request.GET.get("page"))
    page.object_list = _with_amounts(page.object_list)
    return render(request, "portal/app/billing/payments.html", {"page": page})


@require_GET
@tenant_view
def payment_detail(request, payment_id: int):
    payment = get_object_or_404(Payment, pk=payment_id, tenant=request.tenant)
    (payment,) = _with_amounts([payment])
    return render(request, "portal/app/billing/payment.html", {"payment": payment})
