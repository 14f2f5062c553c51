import logging

from django.conf import settings

from billing.alerts import budget_alerts_send, low_balance_alerts_send
from billing.holds import holds_release_expired
from billing.payments import (
    TRANSIENT_ERRORS,
    reconciliation_run,
    stripe_event_apply,
    stripe_events_requeue,
)
from billing.price_changes import price_changes_apply
from billing.starter import promo_expire_due
from billing.workers import holds_release_dead
from config.celery import app

logger = logging.getLogger(__name__)


@app.task
def release_expired_holds() -> int:
    return holds_release_expired()


@app.task
def release_dead_workers_holds() -> int:
    return holds_release_dead()


@app.task
def expire_promo_credit() -> int:
    return promo_expire_due()


@app.task
def send_low_balance_alerts() -> int:
    # Budget alerts ride on the same minute's sweep (billing.alerts).
    return low_balance_alerts_send() + budget_alerts_send()


@app.task
def reconcile_stripe_payments() -> dict:
    if not settings.STRIPE_SECRET_KEY:
        return {"skipped": "STRIPE_SECRET_KEY is not set"}
    stripe_events_requeue()
    run = reconciliation_run()
    return {"seen": run.seen, "credited": run.credited, "expired": run.expired}


# A recorded Stripe event is tried again after 1, 2, 4, 8 and 16 minutes;
# after that, reconciliation queues it again every SWITCHBOARD_RECONCILE_SECONDS.
STRIPE_EVENT_RETRIES = 5
STRIPE_EVENT_FIRST_RETRY_SECONDS = 60


@app.task(bind=True, max_retries=STRIPE_EVENT_RETRIES)
def apply_stripe_event(self, event_id: str) -> str:
    """Apply a recorded Stripe event once, asking the Stripe API what it
    needs; retried while Stripe (or the database) is away."""
    try:
        return stripe_event_apply(event_id)
    except TRANSIENT_ERRORS as exc:
        retries = self.request.retries
        if retries >= self.max_retries:
            logger.error(
                "Stripe event %s not applied after %s attempts (%s); "
                "reconciliation will queue it again",
                event_id,
                retries + 1,
                exc,
            )
            return "waiting"
        countdown = STRIPE_EVENT_FIRST_RETRY_SECONDS * 2**retries
        raise self.retry(exc=exc, countdown=countdown) from exc


@app.task
def apply_price_changes() -> int:
    return price_changes_apply()
