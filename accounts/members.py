"""
A tenant's members: invitations by email, acceptance, roles and removal.

Only owners call the writing services (the views check the role). Changes
to one tenant's members run under a lock on the tenant's row, so two owners
demoting or removing each other at the same moment cannot leave it with no
owner at all.
"""

import hashlib
import secrets

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from accounts import language
from accounts.mail import send_email
from accounts.models import Invitation, Membership, Tenant, User
from accounts.services import email_mark_verified
from audit.services import audit_record


class MemberError(ValueError):
    """A members change that is refused, with the reason to show."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lock_tenant(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


# --- Invitations -------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by: User
) -> tuple[Invitation, str]:
    """
    Invite `email` to `tenant` with `role`, replacing a pending invitation of
    the same address. Return the invitation and the secret for its link,
    which is not stored. Raise MemberError if the address is a member already.
    """
    _lock_tenant(tenant)
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise MemberError(
            _("%(email)s is already a member of %(tenant)s.")
            % {"email": email, "tenant": tenant.name}
        )
    Invitation.objects.filter(
        tenant=tenant, email=email, accepted_at__isnull=True
    ).delete()
    secret = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_digest=token_digest(secret),
        invited_by=invited_by,
    )
    audit_record(
        actor=invited_by,
        action="member.invite",
        tenant=tenant,
        target=f"invitation:{invitation.pk}",
        summary=f"invited {email} as {role}",
    )
    return invitation, secret


def invitation_send(*, invitation: Invitation, secret: str, site_url: str) -> bool:
    """Email the invitation's link to the invited address, in the language
    the inviter is using now: the invited person has no account yet."""
    link = site_url + reverse("invitation_accept", args=[secret])
    inviter = invitation.invited_by
    return send_email(
        to=invitation.email,
        language=language.supported(get_language()),
        subject=format_lazy(
            gettext_lazy("You are invited to {tenant} on Switchboard"),
            tenant=invitation.tenant.name,
        ),
        template="portal/members/emails/invitation.txt",
        context={
            "invitation": invitation,
            "inviter": inviter.email if inviter else gettext_lazy("An owner"),
            "link": link,
        },
    )


def member_invite(
    *, tenant: Tenant, email: str, role: str, invited_by: User, site_url: str
) -> Invitation:
    """Invite `email` and send the invitation (after it is committed)."""
    invitation, secret = invitation_create(
        tenant=tenant, email=email, role=role, invited_by=invited_by
    )
    invitation_send(invitation=invitation, secret=secret, site_url=site_url)
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    """Return the pending, unexpired invitation whose link carries `token`,
    or None."""
    invitation = (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(token_digest=token_digest(token), accepted_at__isnull=True)
        .first()
    )
    if invitation is None or invitation.is_expired:
        return None
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    deleted, _ = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True
    ).delete()
    if deleted:
        audit_record(
            actor=actor,
            action="member.invite_revoke",
            tenant=invitation.tenant_id,
            target=f"invitation:{invitation.pk}",
            summary=f"revoked the invitation of {invitation.email}",
        )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """
    Make `user` a member of the invitation's tenant with its role. The user's
    address must be the invited one; following the emailed link proves it,
    so the address counts as verified. Raise MemberError.
    """
    locked = (
        Invitation.objects.select_for_update()
        .filter(pk=invitation.pk, accepted_at__isnull=True)
        .first()
    )
    if locked is None:
        raise MemberError(_("This invitation was already used or withdrawn."))
    if locked.is_expired:
        raise MemberError(_("This invitation has expired; ask for a new one."))
    if user.email.lower() != locked.email.lower():
        raise MemberError(
            _("This invitation is for %(invited)s, and you are signed in as %(email)s.")
            % {"invited": locked.email, "email": user.email}
        )
    _lock_tenant(locked.tenant)
    membership, created = Membership.objects.get_or_create(
        user=user, tenant_id=locked.tenant_id, defaults={"role": locked.role}
    )
    if not created and locked.role == Membership.Role.OWNER:
        # An invitation never takes a role away, but may give ownership.
        membership.role = Membership.Role.OWNER
        membership.save(update_fields=["role"])
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    email_mark_verified(user=user)
    audit_record(
        actor=user,
        action="member.join",
        tenant=locked.tenant_id,
        target=f"user:{user.pk}",
        summary=f"{user.email} joined as {membership.role}",
    )
    return membership


@transaction.atomic
def invitation_signup(
    *, invitation: Invitation, password: str, language_code: str | None = None
) -> User:
    """Create the invited person's account and make them a member; they own
    no tenant of their own. `language_code` (the sign-up page's) is the
    language of their emails."""
    user = User.objects.create_user(
        invitation.email, password, language=language.supported(language_code) or ""
    )
    invitation_accept(invitation=invitation, user=user)
    user.refresh_from_db()
    return user


# --- Members -----------------------------------------------------------------


def _refuse_last_owner(membership: Membership, why: str) -> None:
    """Raise MemberError if `membership` is its tenant's only owner: a tenant
    needs at least one. Call it under the tenant's lock."""
    if membership.role != Membership.Role.OWNER:
        return
    others = (
        Membership.objects.filter(
            tenant_id=membership.tenant_id, role=Membership.Role.OWNER
        )
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise MemberError(
            _("A tenant needs at least one owner: %(why)s") % {"why": why}
        )


@transaction.atomic
def member_role_set(*, membership: Membership, role: str, actor: User) -> Membership:
    """Give `membership` the role `role`; never demote the last owner."""
    if role not in Membership.Role.values:
        raise MemberError(_("Unknown role %(role)r.") % {"role": role})
    _lock_tenant(membership.tenant)
    membership = Membership.objects.select_related("user").get(pk=membership.pk)
    if membership.role == role:
        return membership
    _refuse_last_owner(membership, "make someone else an owner first.")
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="member.role",
        tenant=membership.tenant_id,
        target=f"user:{membership.user_id}",
        summary=f"{membership.user.email}: {previous} -> {role}",
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: User) -> None:
    """Remove `membership` from its tenant; never the last owner."""
    _lock_tenant(membership.tenant)
    membership = (
        Membership.objects.select_related("user").filter(pk=membership.pk).first()
    )
    if membership is None:  # removed meanwhile
        return
    _refuse_last_owner(membership, "the last owner cannot be removed.")
    membership.delete()
    audit_record(
        actor=actor,
        action="member.remove",
        tenant=membership.tenant_id,
        target=f"user:{membership.user_id}",
        summary=f"removed {membership.user.email}",
    )
