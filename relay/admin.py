from django import forms
from django.contrib import admin, messages

from relay.checks import channel_check
from relay.models import Channel, UpstreamKey, UsageRecord


class UpstreamKeyForm(forms.ModelForm):
    new_secret = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
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
        if commit:
            key.save()
        return key


class UpstreamKeyInline(admin.TabularInline):
    model = UpstreamKey
    form = UpstreamKeyForm
    extra = 1
    readonly_fields = ["masked", "auto_disabled", "disabled_at", "created_at"]


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
            "connect_timeout",
            "read_timeout",
            "priority",
            "weight",
            "is_enabled",
        ]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    inlines = [UpstreamKeyInline]
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
    actions = ["test_channels"]

    @admin.action(description="Test selected channels (one tiny real request)")
    def test_channels(self, request, queryset):
        for channel in queryset:
            result = channel_check(channel)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{channel.name}: {result}", level)

    @admin.display(description="upstream keys")
    def key(self, channel):
        return ", ".join(k.masked for k in channel.upstream_keys.all()) or "—"


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "tenant",
        "model",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "images",
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
