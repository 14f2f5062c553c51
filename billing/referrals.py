"""
Referral rewards: a tenant that invited another is credited once, when the
invitee's first paid top-up is credited, never at signup (so a reward always
follows real money in).
"""

from django.conf import settings
from django.db import transaction

from accounts.models import Tenant
from billing.models import LedgerEntry, Payment
from billing.money import format_usd_text, usd_to_nano
from billing.services import wallet_create, wallet_credit


def referral_reference(invitee_id: int) -> str:
    """One reward per invitee, however many top-ups it makes."""
    return f"referral:{invitee_id}"


@transaction.atomic
def referral_reward_after_topup(*, payment: Payment) -> LedgerEntry | None:
    """
    Credit the referrer of `payment`'s tenant SWITCHBOARD_REFERRAL_REWARD_USD
    if `payment` is the tenant's first paid top-up. Call it in the
    transaction that credits the payment. Return the reward's ledger row, or
    None when none is due.
    """
    reward = usd_to_nano(settings.SWITCHBOARD_REFERRAL_REWARD_USD)
    if reward <= 0:
        return None
    invitee = Tenant.objects.only("name", "referred_by_id").get(pk=payment.tenant_id)
    inviter_id = invitee.referred_by_id
    if inviter_id is None or inviter_id == invitee.pk:
        return None
    earlier = Payment.objects.filter(
        tenant_id=invitee.pk, status=Payment.Status.PAID
    ).exclude(pk=payment.pk)
    if earlier.exists():
        return None
    # A missing wallet must not make the invitee's own credit fail.
    wallet_create(tenant_id=inviter_id)
    return wallet_credit(
        tenant_id=inviter_id,
        amount=reward,
        kind=LedgerEntry.Kind.REFERRAL,
        reference=referral_reference(invitee.pk),
        description=(
            f"Referral reward {format_usd_text(reward)}: {invitee.name} "
            "made its first top-up"
        ),
    )
