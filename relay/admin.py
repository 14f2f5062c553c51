"""
Channels in the admin: upstream keys (shown masked, added and rotated by
typing a new secret, never displayed again), cost prices per model, a
one-click test, and an audit row for every change. Staff roles
(console.roles) decide who reads and who changes: finance and superusers
change channels, support only reads them.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone

from accounts import roles
from audit.admin_edits import AuditedEditsMixin, InlineEdit
from billing.models import Prices
from portal.templatetags.switchboard import usd_html
from relay import catalog
from relay.auto import tiers_clean
from relay.models import AutoTiers, Channel, ChannelCost, UpstreamKey, UsageRecord
from relay.probes import channel_check

# The cost prices a channel's inline edits (image tables: not by hand here).
PRICE_COLUMNS = Prices.USD_FIELDS


class RoleAdminMixin(roles.RolePermissionsMixin):
    """Readable by every console role, changeable by those with CHANNELS."""

    def has_module_permission(self, request):
        return roles.can(request.user, roles.READ)

    def has_view_permission(self, request, obj=None):
        return roles.can(request.user, roles.READ)

    def has_add_permission(self, request, obj=None):
        return roles.can(request.user, roles.CHANNELS)

    def has_change_permission(self, request, obj=None):
        return roles.can(request.user, roles.CHANNELS)

    def has_delete_permission(self, request, obj=None):
        return roles.can(request.user, roles.CHANNELS)


class UpstreamKeyForm(forms.ModelForm):
    new_secret = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted, never shown again. On an existing key: "
        "type a new one to rotate it; leave empty to keep it.",
    )

    class Meta:
        model = UpstreamKey
        fields = ["label", "is_enabled", "disabled_reason"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.secret_encrypted and not cleaned.get("new_secret"):
            raise forms.ValidationError("Enter the upstream API key.")
        return cleaned

    def save(self, commit=True):
        key = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            key.secret = self.cleaned_data["new_secret"]
        if "is_enabled" in self.changed_data:
            # Staff decided: the relay's own disabling no longer applies.
            key.auto_disabled = False
            key.disabled_at = None if key.is_enabled else timezone.now()
        if commit:
            key.save()
        return key


class UpstreamKeyInline(RoleAdminMixin, admin.TabularInline):
    model = UpstreamKey
    form = UpstreamKeyForm
    extra = 1
    fields = [
        "masked",
        "label",
        "new_secret",
        "is_enabled",
        "disabled_reason",
        "auto_disabled",
        "disabled_at",
    ]
    readonly_fields = ["masked", "auto_disabled", "disabled_at"]

    @admin.display(description="key")
    def masked(self, key):
        return key.masked


class ChannelCostForm(forms.ModelForm):
    class Meta:
        model = ChannelCost
        fields = ["model", *PRICE_COLUMNS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Show stored prices as typed: "0.2", not "0.200" or "0E-9".
        for name in PRICE_COLUMNS:
            value = self.initial.get(name)
            if isinstance(value, Decimal):
                self.initial[name] = f"{value.normalize():f}"


class ChannelCostFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        served = set(self.instance.model_names or [])
        seen = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            model = form.cleaned_data.get("model")
            if not model:
                continue
            if model in seen:
                raise forms.ValidationError(f"{model} has two cost prices.")
            seen.add(model)
            if model not in served:
                form.add_error("model", f"This channel does not serve {model}.")


class ChannelCostInline(RoleAdminMixin, admin.TabularInline):
    """What the upstream charges us per model: the cost side of the margin."""

    model = ChannelCost
    form = ChannelCostForm
    formset = ChannelCostFormSet
    extra = 1
    verbose_name = "cost price"
    verbose_name_plural = "cost prices (USD per 1M tokens, what the upstream charges)"
    fields = ["model", *PRICE_COLUMNS]


class ChannelForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="For example https://api.openai.com/v1",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "kind",
            "base_url",
            "model_names",
            "model_map",
            "api_version",
            "responses_api",
            "connect_timeout",
            "read_timeout",
            "priority",
            "weight",
            "is_enabled",
        ]


def _prices(cost: ChannelCost) -> dict:
    return {
        name: str(getattr(cost, name))
        for name in ChannelCost.PRICE_FIELDS
        if getattr(cost, name) not in (None, {}, "")
    }


@admin.register(Channel)
class ChannelAdmin(AuditedEditsMixin, RoleAdminMixin, admin.ModelAdmin):
    form = ChannelForm
    inlines = [UpstreamKeyInline, ChannelCostInline]
    list_display = [
        "name",
        "kind",
        "base_url",
        "priority",
        "weight",
        "is_enabled",
        "keys",
        "cost_prices",
    ]
    list_filter = ["kind", "is_enabled", "priority"]
    search_fields = ["name", "base_url", "model_names"]
    actions = ["test_channels"]
    change_form_template = "admin/relay/channel/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("upstream_keys", "costs")

    @admin.display(description="upstream keys")
    def keys(self, channel):
        return ", ".join(k.masked for k in channel.upstream_keys.all()) or "—"

    @admin.display(description="cost prices")
    def cost_prices(self, channel):
        return ", ".join(cost.model for cost in channel.costs.all()) or "—"

    # -- testing ----------------------------------------------------------

    def get_urls(self):
        test = self.admin_site.admin_view(self.test_view)
        return [
            path("<int:pk>/test/", test, name="relay_channel_test"),
            *super().get_urls(),
        ]

    def test_view(self, request, pk: int):
        if request.method != "POST":
            return redirect("admin:relay_channel_change", pk)
        if not self.has_change_permission(request):
            return roles.forbidden(request, roles.CHANNELS)
        channel = get_object_or_404(Channel, pk=pk)
        self._report_check(request, channel)
        return redirect(reverse("admin:relay_channel_change", args=[pk]))

    @admin.action(
        description="Test selected channels (one tiny real request)",
        permissions=["channels"],
    )
    def test_channels(self, request, queryset):
        for channel in queryset:
            self._report_check(request, channel)

    def _report_check(self, request, channel: Channel) -> None:
        result = channel_check(channel)
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(request, f"{channel.name}: {result}", level)

    # -- audit ------------------------------------------------------------

    audit_edits = {
        "create": ("channel.create", "created channel {obj}"),
        "change": ("channel.change", "changed {fields} of channel {obj}"),
        "delete": (
            "channel.delete",
            "deleted channel {obj} with its upstream keys and costs",
        ),
    }

    def audit_inline(self, parent, obj, verb: str, fields: list[str]) -> InlineEdit:
        if isinstance(obj, UpstreamKey):
            if verb == "change" and "new_secret" in fields:
                verb = "rotate"
            fields = [name for name in fields if name != "new_secret"]
            what = f"upstream key {obj.label or obj.pk} ({obj.masked})"
            action = f"upstreamkey.{verb}"
            target = f"upstreamkey:{obj.pk}" if obj.pk else f"channel:{parent.pk}"
            data = {"fields": fields} if fields else {}
        else:
            what = f"cost price of {obj.model}"
            action = f"channelcost.{verb}"
            target = f"channel:{parent.pk}"
            data = _prices(obj) if verb != "delete" else {}
        verbs = {
            "add": "added",
            "change": "changed",
            "delete": "deleted",
            "rotate": "rotated",
        }
        return InlineEdit(
            action=action,
            target=target,
            summary=f"{verbs[verb]} {what} on channel {parent}",
            data=data,
        )


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "tenant",
        "channel",
        "model",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "images",
        "cost_usd",
        "charged_usd",
        "upstream_cost_usd",
        "latency_ms",
    ]
    list_filter = [
        "status",
        "model",
        "routed_from",
        "channel",
        "stream",
        "usage_source",
    ]
    list_select_related = ["tenant", "channel"]
    search_fields = ["request_id", "tenant__name"]
    date_hierarchy = "created_at"

    # The fields hold nano-USD: people read them in the one money format.
    @admin.display(description="cost", ordering="cost")
    def cost_usd(self, record):
        return usd_html(record.cost)

    @admin.display(description="charged", ordering="charged")
    def charged_usd(self, record):
        return usd_html(record.charged)

    @admin.display(description="upstream cost", ordering="upstream_cost")
    def upstream_cost_usd(self, record):
        return "—" if record.upstream_cost is None else usd_html(record.upstream_cost)

    def has_module_permission(self, request):
        return roles.can(request.user, roles.READ)

    def has_view_permission(self, request, obj=None):
        return roles.can(request.user, roles.READ)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AutoTiersForm(forms.ModelForm):
    class Meta:
        model = AutoTiers
        fields = ["tiers"]

    def clean_tiers(self):
        try:
            return tiers_clean(self.cleaned_data.get("tiers") or [])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


@admin.register(AutoTiers)
class AutoTiersAdmin(AuditedEditsMixin, RoleAdminMixin, admin.ModelAdmin):
    """The one tier list of `model: "auto"` (relay.auto); the console's Auto
    model page edits it too, with a reason. Adding one replaces the list;
    deleting it restores the default."""

    form = AutoTiersForm
    list_display = ["__str__", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.pk = AutoTiers.SINGLETON
        super().save_model(request, obj, form, change)
        catalog.forget()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        catalog.forget()

    audit_edits = {
        "create": ("auto_tiers.change", "set the auto model's tiers to {obj}"),
        "change": ("auto_tiers.change", "set the auto model's tiers to {obj}"),
        "delete": ("auto_tiers.delete", "restored the auto model's default tiers"),
    }
