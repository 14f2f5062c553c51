from celery import shared_task
from django.conf import settings

from billing.alerts import low_balance_alerts_send
from billing.holds import holds_release_expired
from billing.payments import reconciliation_run
from billing.price_changes import price_changes_apply
from billing.starter import promo_expire_due
from billing.workers import holds_release_dead


@shared_task
def release_expired_holds() -> int:
    return holds_release_expired()


@shared_task
def release_dead_workers_holds() -> int:
    return holds_release_dead()


@shared_task
def expire_promo_credit() -> int:
    return promo_expire_due()


@shared_task
def send_low_balance_alerts() -> int:
    return low_balance_alerts_send()


@shared_task
def reconcile_stripe_payments() -> dict:
    if not settings.STRIPE_SECRET_KEY:
        return {"skipped": "STRIPE_SECRET_KEY is not set"}
    run = reconciliation_run()
    return {"seen": run.seen, "credited": run.credited, "expired": run.expired}


@shared_task
def apply_price_changes() -> int:
    return price_changes_apply()
