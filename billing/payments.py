"""
Stripe top-ups: Checkout sessions, the webhook events that settle them, and
reconciliation for webhooks that never arrived.

Every credit or claw-back is a ledger row whose reference is derived from
what caused it (the checkout session, the cumulative refunded amount, the
dispute), so the same payment can arrive through any number of events,
replays and reconciliation runs and still move the balance exactly once.
"""

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.services import tenant_suspend
from billing.models import LedgerEntry, Payment, ReconciliationRun, StripeEvent
from billing.money import NANO_PER_CENT, cents_to_nano, format_usd_text
from billing.referrals import referral_reward_after_topup
from billing.services import wallet_credit
from billing.stripe_api import stripe_client

logger = logging.getLogger(__name__)

CURRENCY = "usd"
# Reconciliation asks for sessions this many at a time (Stripe's most) and
# looks at no more than RECONCILE_MAX_SESSIONS per run.
RECONCILE_PAGE_SIZE = 100
RECONCILE_MAX_SESSIONS = 10_000
METADATA_TENANT = "switchboard_tenant_id"
METADATA_PAYMENT = "switchboard_payment_id"

# A payment only moves forward: a late or replayed event about an earlier
# state never undoes a later one, and only "paid" follows "failed".
_RANK = {
    Payment.Status.OPEN: 0,
    Payment.Status.PROCESSING: 1,
    Payment.Status.FAILED: 2,
    Payment.Status.EXPIRED: 2,
    Payment.Status.PAID: 3,
}


class TopUpAmountError(ValueError):
    """A top-up amount Switchboard does not accept."""


class CheckoutFailed(RuntimeError):
    """Stripe did not open a checkout session."""


def payment_reference(session_id: str) -> str:
    """The ledger reference of a checkout session's credit: one per session."""
    return f"stripe:checkout:{session_id}"


def topup_amount_check(amount_cents: Any) -> int:
    """Return `amount_cents` if it is a whole number of dollars within the
    configured bounds; raise TopUpAmountError otherwise."""
    low, high = settings.SWITCHBOARD_TOPUP_MIN_USD, settings.SWITCHBOARD_TOPUP_MAX_USD
    bounds = f"between ${low} and ${high}"
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise TopUpAmountError(f"Choose a whole number of dollars {bounds}.")
    if amount_cents % 100:
        raise TopUpAmountError(
            "Top-ups are whole dollars: "
            f"{format_usd_text(cents_to_nano(amount_cents))} has cents."
        )
    if not low * 100 <= amount_cents <= high * 100:
        raise TopUpAmountError(f"A top-up must be {bounds}.")
    return amount_cents


def checkout_start(
    *,
    tenant: Tenant,
    user: User | None,
    amount_cents: int,
    success_url: str,
    cancel_url: str,
) -> Payment:
    """
    Open a Stripe Checkout session for a top-up of `amount_cents` and return
    its Payment (send the customer to `payment.checkout_url`).

    `success_url` may contain `{CHECKOUT_SESSION_ID}`, which Stripe replaces.
    Raises TopUpAmountError, StripeNotConfigured or CheckoutFailed.
    """
    topup_amount_check(amount_cents)
    client = stripe_client()
    # The row exists before Stripe is called, so its id can travel in the
    # session's metadata; no transaction is held across the call. The
    # customer only ever sees a session whose Payment was saved.
    payment = Payment.objects.create(
        tenant=tenant,
        created_by=user,
        amount_cents=amount_cents,
        currency=CURRENCY,
        stripe_session_id=f"pending:{uuid.uuid4().hex}",
    )
    metadata = {METADATA_TENANT: str(tenant.pk), METADATA_PAYMENT: str(payment.pk)}
    dollars = format_usd_text(cents_to_nano(amount_cents))
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": CURRENCY,
                    "unit_amount": amount_cents,
                    "product_data": {"name": f"Switchboard credit {dollars}"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": f"tenant-{tenant.pk}",
        "metadata": metadata,
        # Carried to the PaymentIntent, so refunds and disputes in the
        # dashboard show whose top-up they are.
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
        # No payment_method_types: Checkout offers every method enabled in
        # the Stripe dashboard that fits the currency and amount (cards,
        # Alipay, WeChat Pay...). WeChat Pay, when offered, must be told
        # where the customer pays from: a browser, shown a QR code.
        "payment_method_options": {"wechat_pay": {"client": "web"}},
    }
    if user is not None and user.email:
        params["customer_email"] = user.email
    try:
        session = client.v1.checkout.sessions.create(
            params, {"idempotency_key": f"switchboard-checkout-{payment.pk}"}
        )
    except stripe.StripeError as exc:
        payment.delete()
        logger.warning("Stripe refused checkout for tenant %s: %s", tenant.pk, exc)
        raise CheckoutFailed(
            "The payment page could not be opened. Please try again in a moment."
        ) from exc
    payment.stripe_session_id = session.id
    payment.checkout_url = session.url or ""
    payment.save(update_fields=["stripe_session_id", "checkout_url"])
    return payment


# -- applying what Stripe says ----------------------------------------------


def _payment_locked(**lookup) -> Payment | None:
    return Payment.objects.select_for_update().filter(**lookup).first()


def _advance(payment: Payment, status: str) -> None:
    if _RANK[status] > _RANK[payment.status]:
        payment.status = status
        payment.save(update_fields=["status"])


def _credit(payment: Payment, session: dict[str, Any]) -> None:
    """Credit a paid session's amount, mark the payment paid and reward the
    referrer of a first top-up. `payment` is locked by the caller."""
    paid, currency = session.get("amount_total"), (session.get("currency") or "")
    if paid != payment.amount_cents or currency.lower() != payment.currency:
        # Sessions are created with one fixed line item, so this means
        # someone changed it outside Switchboard: staff decide, not code.
        logger.error(
            "Stripe session %s paid %s %s but payment %s expects %s %s; "
            "not credited, left for staff",
            payment.stripe_session_id,
            paid,
            currency,
            payment.pk,
            payment.amount_cents,
            payment.currency,
        )
        _advance(payment, Payment.Status.PROCESSING)
        return
    entry = wallet_credit(
        tenant_id=payment.tenant_id,
        amount=cents_to_nano(payment.amount_cents),
        kind=LedgerEntry.Kind.PAYMENT,
        reference=payment_reference(payment.stripe_session_id),
        description=(
            f"Top-up {format_usd_text(cents_to_nano(payment.amount_cents))} "
            f"(Stripe {payment.stripe_session_id})"
        ),
    )
    payment.status = Payment.Status.PAID
    payment.paid_at = payment.paid_at or timezone.now()
    payment.stripe_payment_intent = session.get("payment_intent") or ""
    payment.save(update_fields=["status", "paid_at", "stripe_payment_intent"])
    if entry is not None:
        referral_reward_after_topup(payment=payment)


@transaction.atomic
def session_apply(session: dict[str, Any], *, failed: bool = False) -> Payment | None:
    """
    Bring the Payment of a checkout session in line with the session as
    Stripe reports it: credit it once paid, else mark it processing, failed
    (`failed`: its delayed payment failed) or expired. Return the Payment, or
    None for a session Switchboard did not create.
    """
    session_id = session["id"]
    payment = _payment_locked(stripe_session_id=session_id)
    if payment is None:
        return None
    tenant_id = (session.get("metadata") or {}).get(METADATA_TENANT)
    if tenant_id is not None and tenant_id != str(payment.tenant_id):
        logger.error(
            "Stripe session %s names tenant %s but payment %s belongs to %s; ignored",
            session_id,
            tenant_id,
            payment.pk,
            payment.tenant_id,
        )
        return payment
    if payment.status == Payment.Status.PAID:
        return payment
    if session.get("payment_status") == "paid":
        _credit(payment, session)
    elif failed:
        _advance(payment, Payment.Status.FAILED)
    elif session.get("status") == "expired":
        _advance(payment, Payment.Status.EXPIRED)
    elif session.get("status") == "complete":
        # Completed with a delayed method (bank debit): paid later, or not.
        if session.get("payment_intent"):
            payment.stripe_payment_intent = session["payment_intent"]
            payment.save(update_fields=["stripe_payment_intent"])
        _advance(payment, Payment.Status.PROCESSING)
    return payment


def payment_refresh(payment: Payment) -> Payment:
    """Ask Stripe for the payment's session and apply it (the customer may
    come back from Checkout before the webhook does)."""
    session = stripe_client().v1.checkout.sessions.retrieve(payment.stripe_session_id)
    return session_apply(session.to_dict()) or payment


def _payment_unknown(payment_intent: str | None) -> bool:
    """Whether a refund or dispute names a payment intent that no paid
    Payment carries yet, so that Stripe must be asked about it first."""
    if not payment_intent or not settings.STRIPE_SECRET_KEY:
        return False
    return not Payment.objects.filter(
        stripe_payment_intent=payment_intent, status=Payment.Status.PAID
    ).exists()


def _learn_payment_intent(payment_intent: str | None) -> None:
    """
    Make sure the paid Payment of `payment_intent` is known before a refund
    or dispute is applied to it: if its own webhook is late or lost, ask
    Stripe for the session and apply it first. Called outside any
    transaction, since it may call Stripe; raises stripe.StripeError.
    """
    if not _payment_unknown(payment_intent):
        return
    sessions = stripe_client().v1.checkout.sessions.list(
        {"payment_intent": payment_intent, "limit": 1}
    )
    for session in sessions.data:
        session_apply(session.to_dict())


def _paid_payment_locked(payment_intent: str | None, event: dict) -> Payment | None:
    payment = (
        _payment_locked(stripe_payment_intent=payment_intent)
        if payment_intent
        else None
    )
    if payment is None or payment.status != Payment.Status.PAID:
        logger.warning(
            "Stripe %s %s: no paid top-up with payment intent %s; ignored",
            event["type"],
            event["id"],
            payment_intent,
        )
        return None
    return payment


def _clawable(payment: Payment) -> int:
    """Cents of a payment not yet taken back by refunds or disputes."""
    return max(
        0, payment.amount_cents - payment.refunded_cents - payment.disputed_cents
    )


def _refund_apply(event: dict) -> None:
    """charge.refunded: take back what was refunded since the last time.
    Stripe reports the charge's cumulative refunded amount."""
    charge = event["data"]["object"]
    payment = _paid_payment_locked(charge.get("payment_intent"), event)
    if payment is None:
        return
    refunded = min(int(charge.get("amount_refunded") or 0), payment.amount_cents)
    newly = refunded - payment.refunded_cents
    if newly <= 0:
        return
    clawback = min(newly, _clawable(payment))
    payment.refunded_cents = refunded
    payment.save(update_fields=["refunded_cents"])
    if clawback:
        # The cumulative figure makes each step of a refund its own row.
        wallet_credit(
            tenant_id=payment.tenant_id,
            amount=-cents_to_nano(clawback),
            kind=LedgerEntry.Kind.REFUND,
            reference=f"stripe:refund:{payment.stripe_session_id}:{refunded}",
            description=(
                f"Refund of {format_usd_text(cents_to_nano(clawback))} "
                f"(Stripe {charge.get('id', '')})"
            ),
        )


def _dispute_apply(event: dict) -> None:
    """charge.dispute.created: take back the disputed amount (no more than
    is left of the payment) and suspend the tenant until staff resume it."""
    dispute = event["data"]["object"]
    payment = _paid_payment_locked(dispute.get("payment_intent"), event)
    if payment is None:
        return
    dispute_id = dispute["id"]
    clawback = min(int(dispute.get("amount") or 0), _clawable(payment))
    if clawback:
        entry = wallet_credit(
            tenant_id=payment.tenant_id,
            amount=-cents_to_nano(clawback),
            kind=LedgerEntry.Kind.DISPUTE,
            reference=f"stripe:dispute:{dispute_id}",
            description=(
                f"Disputed payment {format_usd_text(cents_to_nano(clawback))} "
                f"(Stripe {dispute_id})"
            ),
        )
        if entry is not None:
            payment.disputed_cents += clawback
            payment.save(update_fields=["disputed_cents"])
    reason = dispute.get("reason") or "no reason given"
    tenant_suspend(
        tenant=Tenant.objects.get(pk=payment.tenant_id),
        reason=(
            f"Stripe dispute {dispute_id} ({reason}) on top-up "
            f"{payment.stripe_session_id}"
        ),
        actor=None,
    )


def _dispute_closed_apply(event: dict) -> None:
    """charge.dispute.closed: a dispute won gives back what its creation took
    back; lost or withdrawn changes nothing more. The tenant stays suspended
    until staff resume it: the dispute was a warning sign either way."""
    dispute = event["data"]["object"]
    if dispute.get("status") != "won":
        return
    payment = _paid_payment_locked(dispute.get("payment_intent"), event)
    if payment is None:
        return
    dispute_id = dispute["id"]
    taken = LedgerEntry.objects.filter(
        reference=f"stripe:dispute:{dispute_id}"
    ).values_list("amount", flat=True)
    returned = -sum(taken)
    if not returned:
        return
    entry = wallet_credit(
        tenant_id=payment.tenant_id,
        amount=returned,
        kind=LedgerEntry.Kind.DISPUTE,
        reference=f"stripe:dispute-won:{dispute_id}",
        description=f"Dispute {dispute_id} won: {format_usd_text(returned)} returned",
    )
    if entry is not None:
        payment.disputed_cents -= returned // NANO_PER_CENT
        payment.save(update_fields=["disputed_cents"])


def _session_event(*, failed: bool = False):
    def handle(event: dict) -> None:
        session = event["data"]["object"]
        if session_apply(session, failed=failed) is None:
            logger.warning(
                "Stripe %s %s: session %s was not created by Switchboard; ignored",
                event["type"],
                event["id"],
                session.get("id"),
            )

    return handle


_HANDLERS = {
    "checkout.session.completed": _session_event(),
    "checkout.session.async_payment_succeeded": _session_event(),
    "checkout.session.async_payment_failed": _session_event(failed=True),
    "checkout.session.expired": _session_event(),
    "charge.refunded": _refund_apply,
    "charge.dispute.created": _dispute_apply,
    "charge.dispute.closed": _dispute_closed_apply,
}
# The events the Stripe dashboard's webhook endpoint should send.
HANDLED_EVENTS = tuple(_HANDLERS)

# What the handlers read from each event's object: field -> (type, required).
# Anything else in the object is ignored; a field present with another type
# makes the event invalid rather than a crash halfway through applying it.
_SESSION_FIELDS = {
    "id": (str, True),
    "metadata": (dict, False),
    "payment_intent": (str, False),
    "payment_status": (str, False),
    "status": (str, False),
    "amount_total": (int, False),
    "currency": (str, False),
}
_DISPUTE_FIELDS = {
    "id": (str, True),
    "payment_intent": (str, False),
    "amount": (int, False),
    "reason": (str, False),
    "status": (str, False),
}
_OBJECT_FIELDS = {
    **dict.fromkeys(
        [name for name in _HANDLERS if name.startswith("checkout.")], _SESSION_FIELDS
    ),
    "charge.refunded": {
        "id": (str, False),
        "payment_intent": (str, False),
        "amount_refunded": (int, False),
    },
    "charge.dispute.created": _DISPUTE_FIELDS,
    "charge.dispute.closed": _DISPUTE_FIELDS,
}

# Failures that pass: the Stripe API or the database being away. An event
# that meets one of them stays "received" and is tried again later.
TRANSIENT_ERRORS = (stripe.StripeError, OperationalError, InterfaceError)


class InvalidStripeEvent(ValueError):
    """A signed payload that is not a Stripe event Switchboard can read."""


class StripeEventNotQueued(RuntimeError):
    """A recorded event's task could not be queued (the broker is away)."""


def _typed(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def stripe_event_parse(payload: bytes | str) -> dict[str, Any]:
    """
    Return the event in a webhook payload whose signature was verified, or
    raise InvalidStripeEvent if it is not a JSON object with a string `id`
    and `type`, and, for the types Switchboard handles, `data.object` with
    the fields their handlers read, of the right types.
    """
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, too deep
        raise InvalidStripeEvent("The payload is not JSON.") from exc
    if not isinstance(event, dict):
        raise InvalidStripeEvent("The payload is not a JSON object.")
    for name in ("id", "type"):
        if not _typed(event.get(name), str) or not event[name]:
            raise InvalidStripeEvent(f"The event has no `{name}`.")
    fields = _OBJECT_FIELDS.get(event["type"])
    if fields is None:
        return event
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidStripeEvent("The event has no `data.object`.")
    for name, (kind, required) in fields.items():
        value = obj.get(name)
        if (value is None and required) or (
            value is not None and not _typed(value, kind)
        ):
            raise InvalidStripeEvent(
                f"`data.object.{name}` is missing or not a {kind.__name__}."
            )
    return event


def stripe_event_process(event: dict[str, Any]) -> str:
    """
    Record a verified event (from stripe_event_parse), then apply it once.
    Return "processed", "duplicate" (this event id was already applied),
    "failed" (it was recorded but cannot be applied), "ignored" (a type
    Switchboard does not handle) or "queued".

    An event is queued to the apply_stripe_event task, which retries, when
    applying it needs the Stripe API (a refund or dispute of a payment not
    seen paid yet) or failed here: a Stripe outage never makes the whole
    delivery fail. Raises StripeEventNotQueued if the task cannot be queued
    (the event stays recorded; Stripe's redelivery tries again). Called
    outside any transaction: the row is committed before the task is queued.
    """
    if event["type"] not in _HANDLERS:
        return "ignored"
    recorded, _ = StripeEvent.objects.get_or_create(
        event_id=event["id"], defaults={"type": event["type"], "payload": event}
    )
    if recorded.status != StripeEvent.Status.RECEIVED:
        return _OUTCOMES[recorded.status]
    if event["type"].startswith("charge.") and _payment_unknown(
        event["data"]["object"].get("payment_intent")
    ):
        return _apply_later(recorded)
    try:
        return _event_apply(event["id"])
    except Exception:
        logger.exception(
            "Stripe %s %s could not be applied now; queued", event["type"], event["id"]
        )
        return _apply_later(recorded)


_OUTCOMES = {
    StripeEvent.Status.PROCESSED: "duplicate",
    StripeEvent.Status.FAILED: "failed",
}


def _apply_later(recorded: StripeEvent) -> str:
    # Imported here: billing.tasks imports this module.
    from billing.tasks import apply_stripe_event

    try:
        apply_stripe_event.delay(recorded.event_id)
    except Exception as exc:  # the broker is away (or, inline, the task broke)
        logger.exception("Could not queue Stripe event %s", recorded.event_id)
        raise StripeEventNotQueued(str(recorded)) from exc
    return "queued"


def _event_apply(event_id: str) -> str:
    """Apply a recorded event's effects, in the transaction that marks it
    processed; the row lock makes a concurrent delivery wait, then find it
    applied."""
    with transaction.atomic():
        recorded = StripeEvent.objects.select_for_update().get(event_id=event_id)
        if recorded.status != StripeEvent.Status.RECEIVED:
            return _OUTCOMES[recorded.status]
        _HANDLERS[recorded.type](recorded.payload)
        recorded.status = StripeEvent.Status.PROCESSED
        recorded.processed_at = timezone.now()
        recorded.error = ""
        recorded.save(update_fields=["status", "processed_at", "error"])
    return "processed"


def stripe_event_apply(event_id: str) -> str:
    """
    Apply a recorded event (the apply_stripe_event task): first ask Stripe
    about a payment it refers to that Switchboard has not seen paid, then
    apply it once. Return "processed", "duplicate" or "failed" (its content
    cannot be applied: recorded as failed, for staff). Raises one of
    TRANSIENT_ERRORS when Stripe or the database is away: try again later.
    """
    recorded = StripeEvent.objects.get(event_id=event_id)
    if recorded.status != StripeEvent.Status.RECEIVED:
        return _OUTCOMES[recorded.status]
    try:
        if recorded.type.startswith("charge."):
            obj = recorded.payload["data"]["object"]
            _learn_payment_intent(obj.get("payment_intent"))
        return _event_apply(event_id)
    except TRANSIENT_ERRORS as exc:
        stripe_event_note_error(event_id, exc)
        raise
    except Exception as exc:
        logger.exception("Stripe %s cannot be applied; marked failed", recorded)
        StripeEvent.objects.filter(
            event_id=event_id, status=StripeEvent.Status.RECEIVED
        ).update(status=StripeEvent.Status.FAILED, error=_error_text(exc))
        return "failed"


def stripe_event_note_error(event_id: str, exc: BaseException) -> None:
    """Keep the last error of an event still waiting to be applied."""
    StripeEvent.objects.filter(
        event_id=event_id, status=StripeEvent.Status.RECEIVED
    ).update(error=_error_text(exc))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def stripe_events_requeue(*, now=None) -> int:
    """
    Queue again the events recorded more than STRIPE_EVENT_REQUEUE_AFTER ago
    and still not applied (their task gave up during a long Stripe outage,
    or was lost), up to SWITCHBOARD_RECONCILE_HOURS old. Return how many.
    """
    from billing.tasks import apply_stripe_event

    now = now or timezone.now()
    since = now - timedelta(hours=settings.SWITCHBOARD_RECONCILE_HOURS)
    waiting = StripeEvent.objects.filter(
        status=StripeEvent.Status.RECEIVED,
        received_at__gte=since,
        received_at__lt=now - STRIPE_EVENT_REQUEUE_AFTER,
    ).values_list("event_id", flat=True)
    count = 0
    for event_id in waiting:
        logger.warning("Stripe event %s still not applied; queued again", event_id)
        apply_stripe_event.delay(event_id)
        count += 1
    return count


# Longer than the apply_stripe_event task's own retries take.
STRIPE_EVENT_REQUEUE_AFTER = timedelta(hours=1)


# -- reconciliation ---------------------------------------------------------


@dataclass
class Reconciliation:
    seen: int = 0
    credited: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    abandoned: int = 0


def reconciliation_run() -> ReconciliationRun:
    """Reconcile and record the run (and its failure, if Stripe failed it),
    so staff can see when payments were last checked against Stripe."""
    run = ReconciliationRun.objects.create()
    try:
        result = payments_reconcile(now=run.started_at)
    except stripe.StripeError as exc:
        run.error = str(exc)[:300]
        run.finished_at = timezone.now()
        run.save(update_fields=["error", "finished_at"])
        raise
    run.seen = result.seen
    run.credited = len(result.credited)
    run.expired = len(result.expired) + result.abandoned
    run.finished_at = timezone.now()
    run.save(update_fields=["seen", "credited", "expired", "finished_at"])
    return run


def payments_reconcile(*, now=None) -> Reconciliation:
    """
    Apply every checkout session created in the last
    SWITCHBOARD_RECONCILE_HOURS as Stripe reports it: a paid session whose
    webhook never arrived is credited (once: the same ledger reference as
    the webhook's), an expired one is marked expired. A placeholder whose
    process died before Stripe answered (`pending:` session id, so it never
    reached Stripe and cannot be paid) is marked expired after an hour.
    """
    now = now or timezone.now()
    since = now - timedelta(hours=settings.SWITCHBOARD_RECONCILE_HOURS)
    result = Reconciliation()
    result.abandoned = Payment.objects.filter(
        stripe_session_id__startswith="pending:",
        status=Payment.Status.OPEN,
        created_at__lt=now - timedelta(hours=1),
    ).update(status=Payment.Status.EXPIRED)
    pending = Payment.objects.exclude(status=Payment.Status.PAID).filter(
        created_at__gte=since - timedelta(hours=1)
    )
    if not pending.exists():
        return result
    sessions = stripe_client().v1.checkout.sessions.list(
        {"created": {"gte": int(since.timestamp())}, "limit": RECONCILE_PAGE_SIZE}
    )
    for session in sessions.auto_paging_iter():
        if result.seen >= RECONCILE_MAX_SESSIONS:
            logger.warning(
                "Reconciliation stopped after %s sessions", RECONCILE_MAX_SESSIONS
            )
            break
        result.seen += 1
        if session.status == "open":
            continue
        before = pending.filter(stripe_session_id=session.id).first()
        if before is None:
            continue
        payment = session_apply(session.to_dict())
        if payment is None or payment.status == before.status:
            continue
        if payment.status == Payment.Status.PAID:
            logger.warning(
                "Reconciliation credited %s: its webhook never arrived", session.id
            )
            result.credited.append(session.id)
        elif payment.status == Payment.Status.EXPIRED:
            result.expired.append(session.id)
    return result
