import logging

import stripe
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts.tenancy import current_membership
from billing.models import Payment
from billing.money import format_usd_text
from billing.payments import (
    InvalidStripeEvent,
    StripeEventNotQueued,
    cents_to_nano,
    payment_refresh,
    stripe_event_parse,
    stripe_event_process,
)
from billing.stripe_api import StripeNotConfigured, webhook_secret

logger = logging.getLogger(__name__)


def topup_return_urls(request: HttpRequest) -> tuple[str, str]:
    """Return the success and cancel URLs to give checkout_start: absolute,
    the success one with Stripe's placeholder for the session id."""
    success = request.build_absolute_uri(reverse("billing:topup-success"))
    cancel = request.build_absolute_uri(reverse("billing:topup-cancel"))
    return f"{success}?session_id={{CHECKOUT_SESSION_ID}}", cancel


@csrf_exempt
@require_POST
@sensitive_variables("secret")
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """
    Stripe's event deliveries. Anything but 2xx makes Stripe retry: 400 for
    a payload that is not a valid signed event, 503 while Switchboard cannot
    take it; a valid event is recorded, then applied or queued, and gets 200.
    """
    try:
        secret = webhook_secret()
    except StripeNotConfigured as exc:
        logger.error("Stripe webhook refused: %s", exc)
        return JsonResponse({"error": str(exc)}, status=503)
    try:
        stripe.WebhookSignature.verify_header(
            request.body,
            request.headers.get("Stripe-Signature"),
            secret,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except stripe.SignatureVerificationError:
        return JsonResponse({"error": "Invalid Stripe signature."}, status=400)
    except ValueError:  # a body that is not UTF-8
        return JsonResponse({"error": "Invalid payload."}, status=400)
    try:
        event = stripe_event_parse(request.body)
    except InvalidStripeEvent as exc:
        logger.warning("Stripe webhook: signed but not a valid event: %s", exc)
        return JsonResponse({"error": f"Not a valid Stripe event: {exc}"}, status=400)
    try:
        outcome = stripe_event_process(event)
    except StripeEventNotQueued:
        return JsonResponse(
            {"error": "The event was recorded but cannot be queued; retry later."},
            status=503,
        )
    return JsonResponse({"received": True, "outcome": outcome})


@login_required
@require_GET
def topup_success(request: HttpRequest) -> HttpResponse:
    """Where Checkout sends the customer after paying: the payment's status."""
    membership = current_membership(request)
    session_id = request.GET.get("session_id", "")
    payment = None
    if membership is not None and session_id:
        payment = Payment.objects.filter(
            tenant=membership.tenant, stripe_session_id=session_id
        ).first()
    if payment is None:
        raise Http404("No such top-up.")
    if payment.status in (Payment.Status.OPEN, Payment.Status.PROCESSING):
        # The customer is often back before the webhook: ask Stripe.
        try:
            payment = payment_refresh(payment)
        except (stripe.StripeError, StripeNotConfigured) as exc:
            logger.warning("Could not refresh %s from Stripe: %s", session_id, exc)
    return render(
        request,
        "billing/topup_success.html",
        {
            "payment": payment,
            "tenant": membership.tenant,
            "amount": format_usd_text(cents_to_nano(payment.amount_cents)),
        },
    )


@login_required
@require_GET
def topup_cancel(request: HttpRequest) -> HttpResponse:
    """Where Checkout sends the customer who went back without paying."""
    return render(request, "billing/topup_cancel.html")
