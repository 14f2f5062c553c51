"""
The Stripe SDK client, built from settings when first needed (never at import
time, so tests and deployments can point it elsewhere).
"""

import threading

import stripe
from django.conf import settings

# Seconds before a call to Stripe gives up; the SDK retries network errors
# and 5xx (with idempotency keys on POSTs) up to MAX_NETWORK_RETRIES times.
TIMEOUT_SECONDS = 20
MAX_NETWORK_RETRIES = 2

_clients: dict[tuple[str, str], stripe.StripeClient] = {}
_lock = threading.Lock()


class StripeNotConfigured(RuntimeError):
    """STRIPE_SECRET_KEY (or STRIPE_WEBHOOK_SECRET for webhooks) is not set."""


def stripe_client() -> stripe.StripeClient:
    """Return the process's client for the configured key and API base."""
    api_key = settings.STRIPE_SECRET_KEY
    if not api_key:
        raise StripeNotConfigured(
            "Stripe is not configured: set STRIPE_SECRET_KEY to take payments."
        )
    base = settings.STRIPE_API_BASE
    with _lock:
        client = _clients.get((api_key, base))
        if client is None:
            client = stripe.StripeClient(
                api_key,
                base_addresses={"api": base} if base else None,
                max_network_retries=MAX_NETWORK_RETRIES,
                # The SDK's default (requests, its own dependency), with a
                # timeout shorter than its 80 s: a page waits on these calls.
                http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
            )
            _clients[(api_key, base)] = client
    return client


def webhook_secret() -> str:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured(
            "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET."
        )
    return secret
