from django import forms
from django.contrib import admin

from relay import crypto
from relay.models import Channel, UsageRecord


class ChannelForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="For example https://api.openai.com/v1",
    )
    new_api_key = forms.CharField(
        label="Upstream API key",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
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
            "priority",
            "weight",
            "is_enabled",
        ]

    def save(self, commit=True):
        channel = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            channel.api_key = self.cleaned_data["new_api_key"]
        if commit:
            channel.save()
        return channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "name",
        "kind",
        "base_url",
        "priority",
        "weight",
        "is_enabled",
        "key",
    ]
    list_filter = ["kind", "is_enabled"]
    search_fields = ["name", "base_url"]

    @admin.display(description="upstream key")
    def key(self, channel):
        return crypto.mask(channel.api_key) if channel.api_key_encrypted else "—"


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "tenant",
        "model",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "charged",
        "latency_ms",
    ]
    list_filter = ["status", "model", "stream", "usage_source"]
    search_fields = ["request_id", "tenant__name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
