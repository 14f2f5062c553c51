"""A tenant opened with its wallet; a proved address and the starter credit
it earns."""

from django.db import transaction

from accounts.members import invitation_accept as membership_from_invitation
from accounts.models import Invitation, Membership, Tenant, User
from accounts.services import email_mark_verified
from billing.models import StarterGrant
from billing.services import wallet_create
from billing.starter import starter_credit_grant


@transaction.atomic
def tenant_create(
    *, name: str, owner: User | None = None, referred_by: Tenant | None = None
) -> Tenant:
    """Create a tenant with its empty wallet and, if given, its owner."""
    tenant = Tenant.objects.create(name=name, referred_by=referred_by)
    wallet_create(tenant_id=tenant.pk)
    if owner is not None:
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


@transaction.atomic
def email_verify(*, user: User) -> StarterGrant | None:
    """
    Mark `user`'s address verified and give the tenant it owns its starter
    credit, once per address. Return the StarterGrant, or None if none was due.
    """
    email_mark_verified(user=user)
    membership = (
        Membership.objects.filter(user=user, role=Membership.Role.OWNER)
        .select_related("tenant")
        .order_by("created_at")
        .first()
    )
    if membership is None:
        return None
    return starter_credit_grant(user=user, tenant=membership.tenant)


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """
    Join the invitation's tenant (accounts.members). Following the emailed
    link proves the address, so a tenant the person already owns gets the
    starter credit that proof earns. Raise MemberError.
    """
    membership = membership_from_invitation(invitation=invitation, user=user)
    email_verify(user=user)
    return membership
