"""
Low-balance alerts: email a tenant's owners once each time its balance drops
below the threshold they chose.

Alerts come from a sweep (Celery beat runs `send_low_balance_alerts` every
minute), not from a check where balances change. Balances change in the
relay's hot path, one or two prepared statements per request; a check there
would add a comparison, an owner lookup and a queued task to every request
for an event that happens a few times a month per tenant. The sweep costs
requests nothing, reads the wallets once a minute, and an alert a minute late
is still early for a balance that took a while to fall.

Each crossing is claimed with a conditional UPDATE setting
`low_balance_alerted_at`, so two workers sweeping at once never both email;
the claim is cleared (re-armed) once the balance is back at or above the
threshold, ready for the next crossing.

Budget alerts (billing.budgets) come from the same sweep, for the same
reason: the owners hear once per period when a budget has spent 80% of its
cap, and once when it has spent all of it. The claim is a conditional
UPDATE of the budget's `alerted_percent` for its current period, one row at
a time (a row lock alone, never waited for while holding another).

Each owner reads the alert in their own language (accounts.language): one
email per language among the owners, rendered by accounts.mail.
"""

import logging
from collections import defaultdict

from django.db.models import F, Q
from django.utils import timezone

from accounts import language
from accounts.mail import send_email
from accounts.models import Membership, Tenant
from billing import budgets
from billing.models import Budget, Wallet
from billing.money import format_usd_text

logger = logging.getLogger(__name__)

# Wallets alerted per sweep; the next sweep, a minute later, takes the rest.
SWEEP_LIMIT = 500


def low_balance_threshold_set(*, tenant: Tenant, threshold: int | None) -> bool:
    """
    Email `tenant`'s owners when its balance drops below `threshold` nano-USD
    (None: never). A new threshold starts a new alert: if the balance is
    already below it, the next sweep sends one. Return False if unchanged.
    """
    if threshold is not None and (
        not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0
    ):
        raise ValueError("The alert threshold must be $0 or more.")
    changed = (
        Wallet.objects.filter(tenant=tenant)
        .exclude(low_balance_threshold=threshold)
        .update(low_balance_threshold=threshold, low_balance_alerted_at=None)
    )
    return bool(changed)


def _below_threshold_unalerted():
    return Wallet.objects.filter(
        low_balance_threshold__isnull=False,
        low_balance_alerted_at__isnull=True,
        balance__lt=F("low_balance_threshold"),
    )


def low_balance_alerts_rearm() -> int:
    """Clear the alert of wallets back at or above their threshold (or with
    none any more); return how many."""
    return (
        Wallet.objects.filter(low_balance_alerted_at__isnull=False)
        .filter(
            Q(low_balance_threshold__isnull=True)
            | Q(balance__gte=F("low_balance_threshold"))
        )
        .update(low_balance_alerted_at=None)
    )


def low_balance_alerts_send() -> int:
    """Re-arm recovered wallets, then email the owners of each wallet that
    newly crossed below its threshold. Return how many emails were sent."""
    low_balance_alerts_rearm()
    due = _below_threshold_unalerted().order_by("tenant_id")
    sent = 0
    for tenant_id in due.values_list("tenant_id", flat=True)[:SWEEP_LIMIT]:
        sent += _alert(tenant_id)
    return sent


def _alert(tenant_id: int) -> int:
    claimed_at = timezone.now()
    # The claim re-checks every condition: another worker may have claimed
    # this wallet, or a top-up lifted it above the threshold, meanwhile.
    claimed = (
        _below_threshold_unalerted()
        .filter(tenant_id=tenant_id)
        .update(low_balance_alerted_at=claimed_at)
    )
    if not claimed:
        return 0
    wallet = Wallet.objects.select_related("tenant").get(tenant_id=tenant_id)
    owners = owners_by_language(wallet.tenant)
    if not owners:
        return 0
    sent = owners_email(
        owners,
        template="billing/email/low_balance.txt",
        subject_template="billing/email/low_balance_subject.txt",
        context={
            "tenant": wallet.tenant,
            "balance": format_usd_text(wallet.balance),
            "threshold": format_usd_text(wallet.low_balance_threshold),
        },
    )
    if not sent:
        # Give the crossing back (only this claim) so the next sweep retries.
        Wallet.objects.filter(
            tenant_id=tenant_id, low_balance_alerted_at=claimed_at
        ).update(low_balance_alerted_at=None)
        logger.warning("low-balance alert for tenant %s not sent", tenant_id)
    return sent


# The shares of a budget's cap, in percent, that the owners hear about.
BUDGET_ALERT_LEVELS = (80, 100)


def _current_periods(now) -> Q:
    """Budgets whose `spent` is their current period's."""
    return (
        Q(period=Budget.Period.LIFETIME)
        | Q(period=Budget.Period.DAILY, period_start=budgets.day_start(now))
        | Q(period=Budget.Period.MONTHLY, period_start=budgets.month_start(now))
    )


def _budgets_to_alert(now, level: int):
    """Budgets of the current period that have spent `level`% of their cap
    and have not yet told the owners so in this period."""
    return (
        Budget.objects.filter(_current_periods(now), spent__gt=0)
        .alias(share=F("spent") * 100 - F("cap") * level)
        .filter(share__gte=0)
        .exclude(alerted_period=F("period_start"), alerted_percent__gte=level)
    )


def budget_alerts_send() -> int:
    """Email the owners of each budget that newly reached 80% or 100% of its
    cap in its current period (only the highest level reached). Return how
    many emails were sent."""
    now = budgets.clock()
    sent, seen = 0, set()
    for level in reversed(BUDGET_ALERT_LEVELS):
        due = _budgets_to_alert(now, level).order_by("pk")
        for budget_id in due.values_list("pk", flat=True)[:SWEEP_LIMIT]:
            if budget_id in seen:
                continue
            seen.add(budget_id)
            sent += _budget_alert(budget_id, level, now)
    return sent


def _budget_alert(budget_id: int, level: int, now) -> int:
    budget = (
        Budget.objects.select_related("tenant", "api_key").filter(pk=budget_id).first()
    )
    if budget is None:
        return 0
    before = (budget.alerted_percent, budget.alerted_period)
    claimed = (
        _budgets_to_alert(now, level)
        .filter(pk=budget_id, period_start=budget.period_start)
        .update(alerted_percent=level, alerted_period=F("period_start"))
    )
    if not claimed:
        return 0
    owners = owners_by_language(budget.tenant)
    if not owners:
        return 0
    use = budgets.use_of(budget, now)
    sent = owners_email(
        owners,
        template="billing/email/budget.txt",
        subject_template="billing/email/budget_subject.txt",
        context={
            "tenant": budget.tenant,
            "key": budget.api_key,
            # The label itself (lazy): translated when each email is written.
            "period": Budget.Period(budget.period).label,
            "level": level,
            "spent": format_usd_text(use.spent),
            "cap": format_usd_text(budget.cap),
            "resets_at": use.resets_at,
        },
    )
    if not sent:
        # Give the claim back so the next sweep retries.
        Budget.objects.filter(
            pk=budget_id, alerted_percent=level, alerted_period=budget.period_start
        ).update(alerted_percent=before[0], alerted_period=before[1])
        logger.warning("budget alert for budget %s not sent", budget_id)
    return sent


def owners_by_language(tenant: Tenant) -> dict[str, list[str]]:
    """The addresses of `tenant`'s active owners, by the language of their
    emails (accounts.language)."""
    owners = defaultdict(list)
    for email, code in (
        Membership.objects.filter(
            tenant=tenant, role=Membership.Role.OWNER, user__is_active=True
        )
        .order_by("user__email")
        .values_list("user__email", "user__language")
    ):
        owners[language.supported(code) or language.of(None)].append(email)
    return dict(owners)


def owners_email(owners: dict[str, list[str]], **email) -> int:
    """
    Send one email (accounts.mail.send_email's `email` arguments) to the
    owners of each language, written in theirs; return how many went.

    A claim is given back only when none went: retrying after a partial
    failure would email again the owners who had it.
    """
    return sum(
        send_email(to=recipients, language=code, **email)
        for code, recipients in owners.items()
    )
