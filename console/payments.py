"""
Stripe payments as staff review them: each with the ledger rows it caused,
refunds and disputes, and which need reconciliation.

Ledger references (billing/payments.py): a paid session's credit is
"stripe:checkout:<session>", each step of its refunds
"stripe:refund:<session>:<cumulative cents>", a dispute's claw-back
"stripe:dispute:<dispute id>" (it names no session: disputes are shown per
tenant, and on the payment through its disputed amount).

Each reconciliation run (billing.tasks.reconcile_stripe_payments) is a
ReconciliationRun row; a payment still open or processing an hour after it
was created is shown as needing reconciliation: its webhook may be lost.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.models import LedgerEntry, Payment, ReconciliationRun
from billing.money import cents_to_nano
from billing.payments import payment_reference
from console.filters import (
    FilterError,
    ids_parse,
    range_parse,
    tenant_range_filter,
    text_param,
)

STUCK_AFTER = timedelta(hours=1)
UNSETTLED = (Payment.Status.OPEN, Payment.Status.PROCESSING)
# Filter values beyond Payment.Status: payments with money taken back, and
# those needing reconciliation.
EXTRA_STATUSES = ("refunded", "disputed", "stuck")


def payment_filters_parse(params) -> dict:
    errors: dict[str, str] = {}
    filters: dict = {}
    status = text_param(params, "status")
    if status:
        if status in Payment.Status.values or status in EXTRA_STATUSES:
            filters["status"] = status
        else:
            errors["status"] = "Unknown status."
    filters.update(ids_parse(params, errors, "tenant"))
    filters.update(range_parse(params, errors))
    if errors:
        raise FilterError(errors)
    return filters


def payments_filtered(filters: dict, *, now: datetime | None = None) -> QuerySet:
    now = now or timezone.now()
    payments = Payment.objects.select_related("tenant", "created_by")
    status = filters.get("status")
    if status == "refunded":
        payments = payments.filter(refunded_cents__gt=0)
    elif status == "disputed":
        payments = payments.filter(disputed_cents__gt=0)
    elif status == "stuck":
        payments = payments.filter(
            status__in=UNSETTLED, created_at__lt=now - STUCK_AFTER
        )
    elif status:
        payments = payments.filter(status=status)
    return tenant_range_filter(payments, filters).order_by("-created_at", "-pk")


def needs_reconciliation(payment: Payment, now: datetime) -> bool:
    return payment.status in UNSETTLED and payment.created_at < now - STUCK_AFTER


@dataclass
class PaymentRow:
    payment: Payment
    ledger: list[LedgerEntry]
    stuck: bool

    @property
    def amount(self) -> int:
        return cents_to_nano(self.payment.amount_cents)

    @property
    def net(self) -> int:
        """What the payment is worth after refunds and disputes, nano-USD."""
        if self.payment.status != Payment.Status.PAID:
            return 0
        p = self.payment
        return cents_to_nano(p.amount_cents - p.refunded_cents - p.disputed_cents)

    @property
    def credited(self) -> int:
        return sum(entry.amount for entry in self.ledger)


def payment_rows(payments: list[Payment], *, now: datetime | None = None) -> list:
    """`payments` with their ledger rows: one query for any number of them."""
    now = now or timezone.now()
    if not payments:
        return []
    by_reference = {payment_reference(p.stripe_session_id): p.pk for p in payments}
    match = Q(reference__in=list(by_reference))
    refund_prefixes = {f"stripe:refund:{p.stripe_session_id}:": p.pk for p in payments}
    for prefix in refund_prefixes:
        match |= Q(reference__startswith=prefix)
    ledger: dict[int, list[LedgerEntry]] = defaultdict(list)
    for entry in LedgerEntry.objects.filter(match).order_by("created_at", "pk"):
        owner = by_reference.get(entry.reference)
        if owner is None:
            owner = refund_prefixes.get(entry.reference.rsplit(":", 1)[0] + ":")
        if owner is not None:
            ledger[owner].append(entry)
    return [
        PaymentRow(payment=p, ledger=ledger[p.pk], stuck=needs_reconciliation(p, now))
        for p in payments
    ]


def clawbacks(limit: int = 50) -> list[LedgerEntry]:
    """The latest refund and dispute ledger rows, newest first."""
    return list(
        LedgerEntry.objects.filter(
            kind__in=(LedgerEntry.Kind.REFUND, LedgerEntry.Kind.DISPUTE)
        )
        .select_related("tenant")
        .order_by("-created_at", "-pk")[:limit]
    )


def last_reconciliation() -> ReconciliationRun | None:
    return ReconciliationRun.objects.first()


def stuck_count(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return Payment.objects.filter(
        status__in=UNSETTLED, created_at__lt=now - STUCK_AFTER
    ).count()
