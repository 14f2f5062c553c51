from django.contrib import admin

from billing.models import Hold, LedgerEntry, ModelPrice, Wallet
from billing.money import format_usd


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money rows change only through billing services, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "balance_usd", "held_usd", "updated_at"]
    search_fields = ["tenant__name"]

    @admin.display(description="balance", ordering="balance")
    def balance_usd(self, wallet):
        return format_usd(wallet.balance)

    @admin.display(description="held", ordering="held")
    def held_usd(self, wallet):
        return format_usd(wallet.held)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "kind",
        "amount_usd",
        "reference",
        "description",
    ]
    list_filter = ["kind"]
    search_fields = ["reference", "tenant__name"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount")
    def amount_usd(self, entry):
        return format_usd(entry.amount)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "tenant", "amount", "created_at", "expires_at"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "input_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "output_per_mtok",
        "per_request_usd",
        "context_window",
        "max_output_tokens",
        "is_active",
    ]
    list_filter = ["is_active"]
    search_fields = ["model"]
