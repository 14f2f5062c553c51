"""
Signing up, proving an email address, and changing it.

The links sent by email are signed (django.core.signing) with a timestamp and
name the user and the address they prove, so a link stops working when it
expires or once the account's address is no longer the one it was sent to.
Starter credit is not given at signup: it comes with the verification
(onboarding.tenants.email_verify), once per address.

Emails are sent after the transaction that created what they announce, and a
failure to send is logged, not raised: the account exists either way and the
person can ask for the email again.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import language
from accounts.mail import send_email
from accounts.models import Tenant, User
from audit.services import audit_record
from billing.models import StarterGrant
from billing.starter import email_key
from onboarding.tenants import email_verify, tenant_create

# The salts keep the names they were first signed with, so links already
# sent stay valid.
VERIFY_SALT = "accounts.registration.verify-email"
EMAIL_CHANGE_SALT = "accounts.registration.email-change"


class LinkInvalid(ValueError):
    """The link was altered, is for another address, or was already used."""


class LinkExpired(LinkInvalid):
    """The link is genuine but older than it may be."""


@transaction.atomic
def signup(
    *,
    email: str,
    password: str,
    tenant_name: str | None,
    referred_by: Tenant | None = None,
    language_code: str | None = None,
) -> User:
    """
    Create a person and, given `tenant_name`, the tenant they own (with its
    empty wallet). No starter credit: that waits for the address to be proved.
    `language_code` (the sign-up page's) is the language of their emails.
    """
    user = User.objects.create_user(
        email, password, language=language.supported(language_code) or ""
    )
    if tenant_name:
        tenant_create(name=tenant_name, owner=user, referred_by=referred_by)
    return user


# --- Verification ------------------------------------------------------------


def verification_token(user: User) -> str:
    return signing.dumps({"user": user.pk, "email": user.email}, salt=VERIFY_SALT)


def verification_send(*, user: User, site_url: str) -> bool:
    """Email `user` a link that proves their address."""
    link = site_url + reverse("verify_email", args=[verification_token(user)])
    return send_email(
        to=user.email,
        language=language.of(user),
        subject=gettext_lazy("Confirm your email address for Switchboard"),
        template="portal/account/emails/verify_email.txt",
        context={
            "user": user,
            "link": link,
            "days": settings.SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS // 86400,
            "credit_usd": settings.SWITCHBOARD_STARTER_CREDIT_USD,
        },
    )


def verification_resend(*, user: User, actor, site_url: str) -> bool:
    """
    Email `user` a new verification link (as the portal's resend does) and
    log who asked. Return whether the email went; False without sending if
    the address is already verified.
    """
    if user.email_verified_at is not None:
        return False
    sent = verification_send(user=user, site_url=site_url)
    membership = user.memberships.order_by("created_at").first()
    audit_record(
        actor=actor,
        action="user.verification_resend",
        tenant=membership.tenant_id if membership else None,
        target=f"user:{user.pk}",
        summary=f"{'sent' if sent else 'failed to send'} a verification email "
        f"to {user.email}",
    )
    return sent


def _load(token: str, *, salt: str) -> dict:
    try:
        data = signing.loads(
            token, salt=salt, max_age=settings.SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired as exc:
        raise LinkExpired(_("This link has expired.")) from exc
    except signing.BadSignature as exc:
        raise LinkInvalid(_("This link is not valid.")) from exc
    if not isinstance(data, dict):
        raise LinkInvalid(_("This link is not valid."))
    return data


@dataclass(frozen=True)
class Verification:
    user: User
    # The starter credit this verification gave, if any.
    grant: StarterGrant | None
    # False when the address had been verified before (a second click).
    newly_verified: bool


def verify(*, token: str) -> Verification:
    """
    Mark the address a verification link names as verified and give the
    starter credit due for it. Raise LinkExpired or LinkInvalid.
    """
    data = _load(token, salt=VERIFY_SALT)
    user = User.objects.filter(pk=data.get("user"), is_active=True).first()
    if user is None or user.email != data.get("email"):
        raise LinkInvalid(
            _(
                "This link is for an address the account no longer uses, or for "
                "an account that no longer exists."
            )
        )
    newly = user.email_verified_at is None
    grant = email_verify(user=user)
    return Verification(user=user, grant=grant, newly_verified=newly)


def starter_credit_had(user: User) -> bool:
    """Whether `user`'s address, or a tenant they own, already had its
    starter credit (to explain why a verification gave none)."""
    return StarterGrant.objects.filter(email_key=email_key(user.email)).exists()


# --- Change of address -------------------------------------------------------


def email_change_request(*, user: User, new_email: str, site_url: str) -> bool:
    """
    Email `new_email` a link that, once followed, makes it `user`'s address.
    Nothing changes until then; the current address is told of the request.
    """
    token = signing.dumps(
        {"user": user.pk, "old": user.email, "new": new_email}, salt=EMAIL_CHANGE_SALT
    )
    link = site_url + reverse("email_change_confirm", args=[token])
    sent = send_email(
        to=new_email,
        language=language.of(user),
        subject=gettext_lazy("Confirm your new email address for Switchboard"),
        template="portal/account/emails/email_change.txt",
        context={
            "user": user,
            "new_email": new_email,
            "link": link,
            "days": settings.SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS // 86400,
        },
    )
    send_email(
        to=user.email,
        language=language.of(user),
        subject=gettext_lazy(
            "A change of your Switchboard email address was requested"
        ),
        template="portal/account/emails/email_change_notice.txt",
        context={"user": user, "new_email": new_email, "site_url": site_url},
    )
    return sent


class EmailTaken(ValueError):
    pass


@transaction.atomic
def email_change_confirm(*, token: str) -> Verification:
    """
    Make the address an email-change link names the account's address, now
    verified. A verification of the new address may give starter credit
    only if neither the address nor the tenant had any (billing.starter).
    Raise LinkExpired, LinkInvalid or EmailTaken.
    """
    data = _load(token, salt=EMAIL_CHANGE_SALT)
    user = (
        User.objects.select_for_update()
        .filter(pk=data.get("user"), is_active=True)
        .first()
    )
    new_email = data.get("new")
    if user is None or not new_email or user.email != data.get("old"):
        raise LinkInvalid(
            _(
                "This link was already used, or the account's address changed "
                "since it was sent."
            )
        )
    if User.objects.filter(email__iexact=new_email).exclude(pk=user.pk).exists():
        raise EmailTaken(
            _("Another account now uses %(email)s.") % {"email": new_email}
        )
    user.email = new_email
    user.email_verified_at = None
    user.save(update_fields=["email", "email_verified_at"])
    grant = email_verify(user=user)
    user.refresh_from_db(fields=["email_verified_at"])
    return Verification(user=user, grant=grant, newly_verified=True)
