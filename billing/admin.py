from datetime import datetime

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import RolePermissionsMixin
from audit.admin_edits import AuditedEditsMixin
from billing.budgets import budgets_set, use_of
from billing.forms import parse_usd
from billing.models import (
    Budget,
    Hold,
    LedgerEntry,
    ModelPrice,
    Payment,
    Plan,
    RedemptionBatch,
    RedemptionCode,
    StarterGrant,
    StripeEvent,
    Wallet,
)
from billing.money import cents_to_nano, usd_string
from billing.redemption import (
    MAX_BATCH,
    code_normalise,
    codes_export,
    redemption_batch_create,
)
from exports.csv import csv_response, text_cell
from portal.templatetags.switchboard import usd_html

# Codes listed on a batch's page; the CSV export has all of them.
CODES_SHOWN = 200


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money rows change only through billing services, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        # Every field read-only: the view page then builds no form fields.
        declared = list(super().get_readonly_fields(request, obj))
        fields = [field.name for field in self.model._meta.fields]
        return declared + [name for name in fields if name not in declared]


def usd_cents(cents: int) -> str:
    return usd_html(cents_to_nano(cents))


def _adopt(obj, created) -> None:
    """Make the admin's unsaved `obj` the row a service created, so the
    admin's redirects, history and inlines refer to it."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
    obj._state.db = created._state.db


class BelowZeroFilter(admin.SimpleListFilter):
    title = "balance"
    parameter_name = "below_zero"

    def lookups(self, request, model_admin):
        return [("yes", "Below zero"), ("no", "Zero or more")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(balance__lt=0)
        if self.value() == "no":
            return queryset.filter(balance__gte=0)
        return queryset


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "balance_usd",
        "promo_usd",
        "held_usd",
        "plan",
        "threshold_usd",
        "updated_at",
    ]
    list_filter = ["plan", BelowZeroFilter]
    list_select_related = ["tenant", "plan"]
    search_fields = ["tenant__name"]
    fields = [
        "tenant",
        "balance_usd",
        "promo_usd",
        "promo_expires_at",
        "held_usd",
        "plan",
        "threshold_usd",
        "low_balance_alerted_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description="balance", ordering="balance")
    def balance_usd(self, wallet):
        return usd_html(wallet.balance)

    @admin.display(description="promotional", ordering="promo")
    def promo_usd(self, wallet):
        return usd_html(wallet.promo)

    @admin.display(description="held", ordering="held")
    def held_usd(self, wallet):
        return usd_html(wallet.held)

    @admin.display(description="alert below", ordering="low_balance_threshold")
    def threshold_usd(self, wallet):
        if wallet.low_balance_threshold is None:
            return "—"
        return usd_html(wallet.low_balance_threshold)

    def get_search_results(self, request, queryset, search_term):
        """Find wallets by tenant name or by an owner's email address."""
        results, may_have_duplicates = super().get_search_results(
            request, queryset, search_term
        )
        term = search_term.strip()
        if term:
            owned = Membership.objects.filter(
                role=Membership.Role.OWNER, user__email__icontains=term
            ).values("tenant_id")
            results |= queryset.filter(tenant_id__in=owned)
        return results, may_have_duplicates


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "kind",
        "amount_usd",
        "promo_usd",
        "reference",
        "description",
    ]
    list_filter = ["kind"]
    list_select_related = ["tenant"]
    search_fields = ["reference", "tenant__name"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount")
    def amount_usd(self, entry):
        return usd_html(entry.amount)

    @admin.display(description="of it promotional", ordering="promo_amount")
    def promo_usd(self, entry):
        return usd_html(entry.promo_amount) if entry.promo_amount else ""


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "status",
        "amount_usd",
        "refunded_usd",
        "disputed_usd",
        "paid_at",
        "stripe_session_id",
    ]
    list_filter = ["status"]
    list_select_related = ["tenant"]
    search_fields = ["stripe_session_id", "stripe_payment_intent", "tenant__name"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount_cents")
    def amount_usd(self, payment):
        return usd_cents(payment.amount_cents)

    @admin.display(description="refunded", ordering="refunded_cents")
    def refunded_usd(self, payment):
        return usd_cents(payment.refunded_cents) if payment.refunded_cents else ""

    @admin.display(description="disputed", ordering="disputed_cents")
    def disputed_usd(self, payment):
        return usd_cents(payment.disputed_cents) if payment.disputed_cents else ""


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id"]
    list_filter = ["type"]
    search_fields = ["event_id", "type"]
    date_hierarchy = "received_at"


@admin.register(StarterGrant)
class StarterGrantAdmin(ReadOnlyAdmin):
    list_display = ["granted_at", "email_key", "tenant", "amount_usd", "expires_at"]
    list_select_related = ["tenant"]
    search_fields = ["email_key", "tenant__name"]
    date_hierarchy = "granted_at"

    @admin.display(description="amount", ordering="amount")
    def amount_usd(self, grant):
        return usd_html(grant.amount)


@admin.register(Plan)
class PlanAdmin(AuditedEditsMixin, admin.ModelAdmin):
    """Plans are edited here; a changed multiplier reprices every tenant on
    the plan from its next request, so each change is audited."""

    audit_edits = {
        "create": ("plan.create", "created plan {obj}"),
        "change": ("plan.change", "changed plan {obj}"),
        "delete": ("plan.delete", "deleted plan {obj}"),
    }

    list_display = ["name", "multiplier", "description", "tenants"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(tenant_count=Count("wallets"))

    @admin.display(description="tenants", ordering="tenant_count")
    def tenants(self, plan):
        return plan.tenant_count

    def audit_data(self, obj, form) -> dict:
        return {"fields": form.changed_data, "multiplier": str(obj.multiplier)}


class RedemptionBatchCreateForm(forms.ModelForm):
    value_usd = forms.CharField(
        label="Value per code (USD)",
        help_text='Exact, e.g. "10" or "2.50".',
        max_length=30,
    )

    class Meta:
        model = RedemptionBatch
        fields = ["name", "count", "expires_at"]
        help_texts = {
            "count": f"How many codes, 1 to {MAX_BATCH}.",
            "expires_at": "Empty: the codes never expire.",
        }

    def clean_value_usd(self) -> int:
        value = parse_usd(self.cleaned_data["value_usd"])
        if value <= 0:
            raise forms.ValidationError("A code must be worth more than $0.")
        return value

    def clean_count(self) -> int:
        count = self.cleaned_data["count"]
        if not 1 <= count <= MAX_BATCH:
            raise forms.ValidationError(f"A batch holds 1 to {MAX_BATCH} codes.")
        return count

    def clean_expires_at(self) -> datetime | None:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


class FirstCodesFormSet(BaseInlineFormSet):
    """Only the first CODES_SHOWN codes: a batch may hold thousands."""

    def get_queryset(self):
        if not hasattr(self, "_first_codes"):
            codes = super().get_queryset()[:CODES_SHOWN]
            len(codes)  # evaluate once; forms index into the cached rows
            self._first_codes = codes
        return self._first_codes


class RedemptionCodeInline(admin.TabularInline):
    model = RedemptionCode
    formset = FirstCodesFormSet
    fields = ["code", "redeemed_by", "redeemed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = f"codes (the first {CODES_SHOWN}; export as CSV for all)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("redeemed_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RedemptionBatch)
class RedemptionBatchAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """
    Batches are created here (through redemption_batch_create, which writes
    the codes and the audit row) and never edited: their codes may already
    be in customers' hands.
    """

    list_display = [
        "name",
        "value_usd",
        "count",
        "redeemed",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_select_related = ["created_by"]
    search_fields = ["name"]
    date_hierarchy = "created_at"
    actions = ["export_codes"]
    inlines = [RedemptionCodeInline]
    add_form = RedemptionBatchCreateForm
    detail_fields = [
        "name",
        "value_usd",
        "count",
        "redeemed",
        "expires_at",
        "created_by",
        "created_at",
    ]

    def get_queryset(self, request):
        redeemed = Q(codes__redeemed_at__isnull=False)
        return (
            super()
            .get_queryset(request)
            .annotate(redeemed_count=Count("codes", filter=redeemed))
        )

    @admin.display(description="value per code", ordering="value")
    def value_usd(self, batch):
        return usd_html(batch.value)

    @admin.display(description="redeemed", ordering="redeemed_count")
    def redeemed(self, batch):
        return batch.redeemed_count

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "value_usd", "count", "expires_at"]
        return self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.detail_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        batch = redemption_batch_create(
            name=data["name"],
            value=data["value_usd"],
            count=data["count"],
            expires_at=data["expires_at"],
            actor=request.user,
        )
        _adopt(obj, batch)
        obj.redeemed_count = 0

    def response_post_save_add(self, request, obj):
        # Straight to the new codes.
        return HttpResponseRedirect(
            reverse("admin:billing_redemptionbatch_change", args=[obj.pk])
        )

    # The codes are bearer credit: only those who may hand out money see them.
    @admin.action(description="Export codes as CSV", permissions=["money"])
    def export_codes(self, request, queryset):
        batches = list(queryset.order_by("pk"))
        rows = [
            [text_cell(cell) for cell in row]
            for row in codes_export(batches=batches, actor=request.user)
        ]
        header = ["batch", "code", "value", "expires_at", "redeemed_by", "redeemed_at"]
        name = batches[0].pk if len(batches) == 1 else "selected"
        return csv_response(request, [header, *rows], f"redemption-codes-{name}.csv")


@admin.register(RedemptionCode)
class RedemptionCodeAdmin(ReadOnlyAdmin):
    list_display = ["code", "batch", "redeemed_by", "redeemed_at"]
    list_filter = [("redeemed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["batch", "redeemed_by"]
    search_fields = ["code", "batch__name", "redeemed_by__name"]

    def get_search_results(self, request, queryset, search_term):
        """Find a code however it was typed (case, spaces, dashes)."""
        code = code_normalise(search_term)
        if code is not None:
            return queryset.filter(code=code), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "tenant", "amount_usd", "created_at", "expires_at"]
    list_select_related = ["tenant"]

    @admin.display(description="amount", ordering="amount")
    def amount_usd(self, hold):
        return usd_html(hold.amount)


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedEditsMixin, admin.ModelAdmin):
    list_display = [
        "model",
        "input_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "output_per_mtok",
        "per_request_usd",
        "context_window",
        "max_output_tokens",
        "reasoning",
        "is_active",
    ]
    list_filter = ["is_active", "reasoning"]
    search_fields = ["model"]

    # Edits here take effect at once; the console's prices page schedules
    # changes ahead. Either way the audit log has them.
    audit_edits = {
        "create": ("price.create", "created the price of {obj}"),
        "change": ("price.edit", "changed the price of {obj}"),
        "delete": ("price.delete", "deleted the price of {obj}"),
    }


class BudgetAdminForm(forms.ModelForm):
    cap_usd = forms.CharField(
        label="Cap (USD)", help_text='Per period, exact, e.g. "10" or "2.50".'
    )

    class Meta:
        model = Budget
        fields = ["tenant", "api_key", "period"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["cap_usd"] = usd_string(self.instance.cap).rstrip("0")

    def clean_cap_usd(self) -> int:
        return parse_usd(self.cleaned_data["cap_usd"])

    def clean(self):
        data = super().clean()
        key, tenant = data.get("api_key"), data.get("tenant")
        if key is not None and tenant is not None and key.tenant_id != tenant.pk:
            raise forms.ValidationError("The key is not the tenant's.")
        return data

    def validate_unique(self):
        # One budget per period and key (or tenant) is kept by budgets_set.
        pass


@admin.register(Budget)
class BudgetAdmin(AuditedEditsMixin, admin.ModelAdmin):
    """
    Spend caps of tenants and keys. Saved through billing.budgets.budgets_set,
    never as a whole row: `spent` and `held` move with requests in flight
    while the page is open. Every edit is audited.
    """

    form = BudgetAdminForm
    audit_edits = {
        "create": ("budget.create", "set the {obj}"),
        "change": ("budget.change", "changed the {obj}"),
        "delete": ("budget.delete", "removed the {obj}"),
    }
    list_display = ["tenant", "api_key", "period", "cap_usd", "spent_usd", "held_usd"]
    list_filter = ["period"]
    list_select_related = ["tenant", "api_key"]
    search_fields = ["tenant__name", "api_key__name"]
    raw_id_fields = ["tenant", "api_key"]
    readonly_fields = ["spent_usd", "held_usd", "period_start"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # A budget's owner and period are what it is: only its cap changes.
        return fields + ["tenant", "api_key", "period"] if obj else fields

    @admin.display(description="cap")
    def cap_usd(self, budget):
        return usd_html(budget.cap)

    @admin.display(description="spent this period")
    def spent_usd(self, budget):
        return usd_html(use_of(budget).spent) if budget.pk else "-"

    @admin.display(description="held")
    def held_usd(self, budget):
        return usd_html(budget.held) if budget.pk else "-"

    def audit_tenant(self, obj):
        return obj.tenant

    def audit_data(self, obj, form) -> dict:
        return {"period": obj.period, "key": obj.api_key_id, "cap": obj.cap}

    def save_model(self, request, obj, form, change):
        obj.cap = form.cleaned_data["cap_usd"]
        with transaction.atomic():
            changed = budgets_set(
                tenant=obj.tenant, key=obj.api_key, caps={obj.period: obj.cap}
            )
            saved = Budget.objects.get(
                tenant=obj.tenant, api_key=obj.api_key, period=obj.period
            )
            _adopt(obj, saved)
            if changed:
                self.audit_edit(request, obj, "change" if change else "create", form)

    def _remove(self, request, obj) -> None:
        with transaction.atomic():
            self.audit_edit(request, obj, "delete")
            budgets_set(tenant=obj.tenant, key=obj.api_key, caps={obj.period: None})

    def delete_model(self, request, obj):
        self._remove(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("tenant", "api_key"):
            self._remove(request, obj)
