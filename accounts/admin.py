from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import ApiKey, Membership, Tenant, User
from audit.admin_edits import AuditedEditsMixin
from billing.models import Wallet
from onboarding.tenants import tenant_create
from portal.templatetags.switchboard import usd_html


def console_link(tenant_id: int):
    """Where staff act on a tenant: the console, which asks for a reason and
    writes the audit log for every action."""
    return format_html(
        '<a href="{}">Suspend, resume, credit, change the plan or revoke keys '
        "in the console</a>",
        reverse("console:tenant", args=[tenant_id]),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(AuditedEditsMixin, admin.ModelAdmin):
    """
    For browsing and for a tenant's name and referrer. Suspension, money,
    plans and keys change only in the console, where every action asks for a
    reason and writes the audit log.
    """

    list_display = [
        "name",
        "is_active",
        "suspended_reason",
        "balance",
        "plan",
        "created_at",
    ]
    list_filter = ["is_active", "wallet__plan"]
    list_select_related = ["wallet__plan"]
    search_fields = ["name", "memberships__user__email", "api_keys__prefix"]
    raw_id_fields = ["referred_by"]
    inlines = [MembershipInline]
    readonly_fields = [
        "actions_in_console",
        "is_active",
        "suspended_at",
        "suspended_reason",
        "balance",
        "plan",
        "referral_code",
        "created_at",
    ]

    def has_delete_permission(self, request, obj=None):
        # A tenant's ledger and usage are its money history: kept, never deleted.
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "referred_by"]
        return ["name", "referred_by", *self.readonly_fields]

    @admin.display(description="balance", ordering="wallet__balance")
    def balance(self, tenant):
        wallet = _wallet(tenant)
        return usd_html(wallet.balance) if wallet else "no wallet"

    @admin.display(description="plan", ordering="wallet__plan__name")
    def plan(self, tenant):
        wallet = _wallet(tenant)
        return (wallet and wallet.plan) or "—"

    audit_edits = {
        "create": ("tenant.create", "created {obj}"),
        "change": ("tenant.change", "changed {fields} of {obj}"),
    }

    def audit_tenant(self, tenant):
        return tenant

    @admin.display(description="actions")
    def actions_in_console(self, tenant):
        return console_link(tenant.pk)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A tenant needs its wallet from the start: create it the one way.
        with transaction.atomic():
            tenant = tenant_create(name=obj.name, referred_by=obj.referred_by)
            for field in Tenant._meta.concrete_fields:
                setattr(obj, field.attname, getattr(tenant, field.attname))
            obj._state.adding = False
            self.audit_edit(request, obj, "create", form)


def _wallet(tenant: Tenant) -> Wallet | None:
    try:
        return tenant.wallet
    except Wallet.DoesNotExist:
        return None


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "email_verified_at", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name", "email_verified_at"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups"]},
        ),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedEditsMixin, admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        "tenant",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "tenant__name"]
    # Revoking asks for a reason and writes the audit log: the console does it.
    readonly_fields = [
        "prefix",
        "digest",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoke_in_console",
    ]

    def has_add_permission(self, request):
        # A key's secret is shown once to the customer who creates it.
        return False

    def has_delete_permission(self, request, obj=None):
        # Usage records name their key: a key is revoked, never deleted.
        return False

    audit_edits = {"change": ("apikey.change", "changed {fields} of key {obj}")}

    def audit_tenant(self, key):
        return key.tenant_id

    @admin.display(description="revoke")
    def revoke_in_console(self, key):
        return console_link(key.tenant_id)
