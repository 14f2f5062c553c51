import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.keys import ip_networks


def new_referral_code() -> str:
    return secrets.token_urlsafe(9)


class Tenant(models.Model):
    """A customer account: owns the wallet, the API keys and the usage."""

    name = models.CharField(max_length=200)
    is_active = models.BooleanField(
        default=True,
        help_text="Suspended (inactive) tenants have every API key refused.",
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=300, blank=True)
    # The code in this tenant's invite link, and who invited this tenant.
    referral_code = models.CharField(
        max_length=32, unique=True, default=new_referral_code, editable=False
    )
    referred_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # The language of this person's emails (a code of settings.LANGUAGES):
    # the page's at sign-up, then each choice made with the switcher. Emails
    # sent outside their requests (Celery, another person's) need it; empty
    # means the site's default. Not a choices field, so that adding a
    # language needs no migration.
    language = models.CharField(max_length=16, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MEMBER = "member", _("Member")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """
    An owner's invitation for an email address to join a tenant. The link in
    the email carries a secret; only its SHA-256 digest is stored, so the
    table alone lets no one join. One pending invitation per address and
    tenant: inviting again replaces it.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table of the portal app, where the model began.
        db_table = "portal_invitation"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=Q(accepted_at__isnull=True),
                name="unique_pending_invitation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} ({self.role})"

    @property
    def expires_at(self):
        return self.created_at + timedelta(
            seconds=settings.SWITCHBOARD_INVITATION_MAX_AGE_SECONDS
        )

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at


class ApiKey(models.Model):
    """
    A customer's key for /v1. The secret is shown once at creation; only its
    SHA-256 digest is stored, plus a short prefix to recognise it by.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Model names this key may use; empty means every model.",
    )
    allowed_ips = models.JSONField(
        default=list,
        blank=True,
        help_text="Addresses or networks this key may be used from, e.g. "
        '["203.0.113.7", "10.0.0.0/8"]; empty means anywhere.',
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute", null=True, blank=True, help_text="Empty: no limit."
    )
    tpm_limit = models.PositiveIntegerField(
        "tokens per minute", null=True, blank=True, help_text="Empty: no limit."
    )
    max_in_flight = models.PositiveIntegerField(
        "max requests in flight",
        null=True,
        blank=True,
        help_text="Requests served at once with this key, on every server "
        "together; more get 429 concurrency_limit_exceeded. Empty: no limit.",
    )
    cache_ttl = models.PositiveIntegerField(
        "response cache TTL (seconds)",
        null=True,
        blank=True,
        help_text="Keep this key's deterministic answers (temperature 0 or a "
        "seed) this long and answer repeats from them (relay.response_cache). "
        "Empty or 0: only requests that ask with x-switchboard-cache.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    class Status(models.TextChoices):
        ACTIVE = "active"
        EXPIRED = "expired"
        REVOKED = "revoked"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> "ApiKey.Status":
        """Whether /v1 accepts the key now, as status_of decides."""
        return self.status_of(
            revoked=self.revoked_at is not None, expires_at=self.expires_at
        )

    @classmethod
    def status_of(cls, *, revoked: bool, expires_at, now=None) -> "ApiKey.Status":
        """
        A key's status: revoked whatever its expiry, expired from the instant
        `expires_at` on (at `now`, default the present), otherwise active.
        """
        if revoked:
            return cls.Status.REVOKED
        if expires_at is not None and expires_at <= (now or timezone.now()):
            return cls.Status.EXPIRED
        return cls.Status.ACTIVE

    def clean(self):
        try:
            ip_networks(self.allowed_ips)
        except ValueError as exc:
            raise ValidationError({"allowed_ips": str(exc)}) from exc
