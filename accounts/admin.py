import uuid
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.template.response import TemplateResponse

from accounts.models import ApiKey, Membership, Tenant, User
from accounts.roles import RolePermissionsMixin
from accounts.services import (
    api_key_revoke,
    tenant_resume,
    tenant_suspend,
)
from audit.admin_edits import AuditedEditsMixin
from audit.services import audit_record
from billing.forms import parse_usd
from billing.models import Plan, Wallet
from billing.money import format_usd
from billing.staff import plan_assign, wallet_adjust
from onboarding.tenants import tenant_create

ACTION_TEMPLATE = "admin/accounts/tenant/action_form.html"


class ReasonForm(forms.Form):
    """A staff action on tenants: always with a reason for the audit log."""

    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit log with your name.",
    )


class AdjustForm(ReasonForm):
    amount = forms.CharField(
        label="Amount (USD)",
        max_length=30,
        help_text='Exact, e.g. "25" or "0.50"; negative ("-10") debits.',
    )
    # Identifies this form as rendered: submitting it twice (a double click,
    # a reload) finds the ledger reference taken and adjusts once.
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    field_order = ["amount", "reason"]

    def clean_amount(self) -> int:
        amount = parse_usd(self.cleaned_data["amount"], negative=True)
        if amount == 0:
            raise forms.ValidationError("An adjustment must change the balance.")
        return amount


class PlanForm(ReasonForm):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.all(),
        required=False,
        empty_label="No plan (catalog prices)",
    )

    field_order = ["plan", "reason"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(AuditedEditsMixin, RolePermissionsMixin, admin.ModelAdmin):
    """
    Suspension, money and plans change only through the actions (each asks
    for a reason and writes the audit log), never by editing fields.
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
    actions = ["suspend", "resume", "adjust_wallet", "assign_plan"]
    readonly_fields = [
        "is_active",
        "suspended_at",
        "suspended_reason",
        "balance",
        "plan",
        "referral_code",
        "created_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "referred_by"]
        return ["name", "referred_by", *self.readonly_fields]

    @admin.display(description="balance", ordering="wallet__balance")
    def balance(self, tenant):
        wallet = _wallet(tenant)
        return format_usd(wallet.balance) if wallet else "no wallet"

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

    def _form_action(
        self,
        request,
        queryset,
        *,
        form_class: type[forms.Form],
        title: str,
        submit: str,
        apply: Callable[[list[Tenant], dict], None],
    ):
        """
        Ask for `form_class` on an intermediate page listing the selected
        tenants; once it is valid, `apply` it and return to the list.
        """
        tenants = list(queryset.select_related("wallet__plan").order_by("name"))
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                apply(tenants, form.cleaned_data)
                return None
        else:
            form = form_class(initial={"token": uuid.uuid4().hex})
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "submit": submit,
            "opts": self.model._meta,
            "form": form,
            "media": self.media + form.media,
            "action": request.POST["action"],
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "tenants": [
                {
                    "pk": tenant.pk,
                    "name": str(tenant),
                    "balance": self.balance(tenant),
                    "plan": self.plan(tenant),
                    "state": "active"
                    if tenant.is_active
                    else f"suspended: {tenant.suspended_reason}",
                }
                for tenant in tenants
            ],
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    def _report(self, request, done: int, total: int, did: str, skipped: str):
        if done:
            self.message_user(request, f"{did}: {done} tenant(s).")
        if total - done:
            self.message_user(
                request, f"{skipped}: {total - done} tenant(s).", messages.WARNING
            )

    @admin.action(
        description="Suspend (refuse all API keys)", permissions=["tenant_status"]
    )
    def suspend(self, request, queryset):
        def apply(tenants, data):
            done = sum(
                tenant_suspend(tenant=t, reason=data["reason"], actor=request.user)
                for t in tenants
            )
            self._report(request, done, len(tenants), "Suspended", "Already suspended")

        return self._form_action(
            request,
            queryset,
            form_class=ReasonForm,
            title="Suspend tenants",
            submit="Suspend",
            apply=apply,
        )

    @admin.action(
        description="Resume (accept API keys again)", permissions=["tenant_status"]
    )
    def resume(self, request, queryset):
        def apply(tenants, data):
            done = sum(
                tenant_resume(tenant=t, reason=data["reason"], actor=request.user)
                for t in tenants
            )
            self._report(request, done, len(tenants), "Resumed", "Not suspended")

        return self._form_action(
            request,
            queryset,
            form_class=ReasonForm,
            title="Resume tenants",
            submit="Resume",
            apply=apply,
        )

    @admin.action(description="Credit or debit wallet", permissions=["money"])
    def adjust_wallet(self, request, queryset):
        def apply(tenants, data):
            done = 0
            for tenant in tenants:
                entry = wallet_adjust(
                    tenant=tenant,
                    amount=data["amount"],
                    reason=data["reason"],
                    actor=request.user,
                    reference=f"{data['token']}:{tenant.pk}",
                )
                done += entry is not None
            verb = "Credited" if data["amount"] > 0 else "Debited"
            self._report(
                request,
                done,
                len(tenants),
                f"{verb} {format_usd(abs(data['amount']))}",
                "Already adjusted by this form (submitted twice)",
            )

        return self._form_action(
            request,
            queryset,
            form_class=AdjustForm,
            title="Credit or debit wallets",
            submit="Adjust",
            apply=apply,
        )

    @admin.action(description="Assign plan", permissions=["money"])
    def assign_plan(self, request, queryset):
        def apply(tenants, data):
            for tenant in tenants:
                plan_assign(
                    tenant=tenant,
                    plan=data["plan"],
                    actor=request.user,
                    reason=data["reason"],
                )
            plan = data["plan"] or "catalog prices"
            self.message_user(request, f"{len(tenants)} tenant(s) now on {plan}.")

        return self._form_action(
            request,
            queryset,
            form_class=PlanForm,
            title="Assign a plan",
            submit="Assign",
            apply=apply,
        )


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
class ApiKeyAdmin(AuditedEditsMixin, RolePermissionsMixin, admin.ModelAdmin):
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
    readonly_fields = ["prefix", "digest", "created_by", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # A key's secret is shown once to the customer who creates it.
        return False

    audit_edits = {"change": ("apikey.change", "changed {fields} of key {obj}")}

    def audit_tenant(self, key):
        return key.tenant_id

    @admin.action(description="Revoke selected keys", permissions=["money"])
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            with transaction.atomic():
                api_key_revoke(key=key)
                audit_record(
                    actor=request.user,
                    action="apikey.revoke",
                    tenant=key.tenant,
                    target=f"apikey:{key.pk}",
                    summary=f"revoked key {key} of {key.tenant}",
                )
