"""Forms of the signed-in pages: keys, usage filters, top-up, codes, alerts."""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.keys import ip_networks
from billing.money import NANO_PER_USD
from portal.selectors import day_start
from portal.templatetags.switchboard import status_label
from relay.filters import UsageFilter
from relay.response_cache import MAX_TTL_SECONDS
from relay.selectors import usage_records

CENTS_PER_USD = 100


def _budget_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label=label,
        help_text=_("USD. Optional. Empty: no budget."),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )


class BudgetForm(forms.Form):
    """Spend caps for a UTC day, a UTC month and for good (billing.budgets);
    requests that could go over one get 402 budget_exceeded."""

    daily_budget = _budget_field(_("Daily budget (USD)"))
    monthly_budget = _budget_field(_("Monthly budget (USD)"))
    lifetime_budget = _budget_field(_("Lifetime budget (USD)"))

    PERIODS = {
        "daily": "daily_budget",
        "monthly": "monthly_budget",
        "lifetime": "lifetime_budget",
    }

    @classmethod
    def initial_of(cls, caps: dict[str, int]) -> dict:
        return {
            cls.PERIODS[period]: Decimal(cap) / NANO_PER_USD
            for period, cap in caps.items()
        }

    def caps(self) -> dict[str, int | None]:
        """Each period's cap in nano-USD; None: no budget."""
        caps = {}
        for period, name in self.PERIODS.items():
            usd = self.cleaned_data.get(name)
            caps[period] = None if usd is None else int(usd * NANO_PER_USD)
        return caps


class ApiKeyCreateForm(BudgetForm):
    name = forms.CharField(
        max_length=100,
        label=_("Name"),
        help_text=_("To recognise the key later, e.g. “production backend”."),
    )
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Allowed models"),
        help_text=_("Leave all unticked to allow every model."),
    )
    expires_on = forms.DateField(
        required=False,
        label=_("Expires after"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Optional. The key works until the end of this day (UTC)."),
    )
    rpm_limit = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        label=_("Requests per minute"),
        help_text=_("Optional. More in one minute get 429 rate_limit_exceeded."),
    )
    tpm_limit = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        label=_("Tokens per minute"),
        help_text=_("Optional. Prompt and output tokens together."),
    )
    max_in_flight = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        label=_("Requests at once"),
        help_text=_(
            "Optional. More in flight at the same time get 429 "
            "concurrency_limit_exceeded."
        ),
    )
    cache_ttl = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_TTL_SECONDS,
        label=_("Response cache (seconds)"),
        help_text=_(
            "Optional. Answer repeats of this key's deterministic requests "
            "(temperature 0 or a seed) from the cache for this long, at the "
            "model's cache price."
        ),
    )
    allowed_ips = forms.CharField(
        required=False,
        label=_("Allowed IP addresses"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Optional. Addresses or networks, one per line or separated "
            "by commas (203.0.113.7, 10.0.0.0/8). Empty: anywhere."
        ),
    )

    def __init__(self, *args, models: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = [(name, name) for name in models]

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError(gettext("Choose today or a later day."))
        return day

    def clean_allowed_ips(self) -> list[str]:
        entries = self.cleaned_data["allowed_ips"].replace(",", "\n").split()
        try:
            return [str(network) for network in ip_networks(entries)]
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def expires_at(self):
        """The first instant after the chosen day, or None (never)."""
        day = self.cleaned_data.get("expires_on")
        return day_start(day + timedelta(days=1)) if day else None


class UsageFilterSet(UsageFilter):
    """
    relay.filters.UsageFilter as the usage page shows it: days picked from a
    calendar, the tenant's keys and the served models from lists; and a key
    of another tenant refused rather than shown as an empty log.
    """

    def __init__(self, data, *, tenant, keys, models: list[str]):
        super().__init__(data, queryset=usage_records(tenant_id=tenant.pk))
        fields = self.form.fields
        for name in ("start", "end"):
            fields[name].widget = forms.DateInput(attrs={"type": "date"})
        fields["start"].label = gettext("From")
        fields["end"].label = gettext("To (inclusive)")
        fields["key"].label = gettext("API key")
        fields["model"].label = gettext("Model")
        fields["status"].label = gettext("Status")
        fields["status"].empty_label = gettext("Any status")
        fields["end_user"].label = gettext("End user")
        fields["tag"].label = gettext("Tag")
        fields["tag"].widget.attrs["placeholder"] = gettext("key=value")
        fields["status"].choices = [
            (value, status_label(value))
            for value, _label in fields["status"].choices
            if value
        ]
        fields["key"].widget = forms.Select(
            choices=[("", gettext("Any key"))]
            + [(str(key.pk), f"{key.name} ({key.prefix}…)") for key in keys]
        )
        fields["key"].validators.append(_one_of({key.pk for key in keys}))
        chosen = (self.data.get("model") or "").strip()
        names = sorted({*models, chosen} - {""})
        fields["model"].widget = forms.Select(
            choices=[("", gettext("Any model"))] + [(name, name) for name in names]
        )
        for field in fields.values():
            # They describe the API's parameters; the page has its own words.
            field.help_text = ""

    def rows(self):
        """Yield (bound field, its problem or "") for the template."""
        for field in self.form:
            yield field, field.errors[0] if field.errors else ""


def _one_of(key_ids: set[int]):
    def validate(key_id: int) -> None:
        if key_id not in key_ids:
            raise forms.ValidationError(
                gettext("No API key of this tenant has this id.")
            )

    return validate


class TopUpForm(forms.Form):
    preset = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label=_("Amount"),
        widget=forms.RadioSelect,
    )
    custom = forms.IntegerField(
        required=False,
        label=_("Or another amount (whole US dollars)"),
        widget=forms.NumberInput(attrs={"step": "1", "inputmode": "numeric"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.minimum = settings.SWITCHBOARD_TOPUP_MIN_USD
        self.maximum = settings.SWITCHBOARD_TOPUP_MAX_USD
        self.fields["preset"].choices = [
            (amount, f"${amount}") for amount in settings.SWITCHBOARD_TOPUP_PRESETS_USD
        ]
        self.fields["custom"].widget.attrs.update(min=self.minimum, max=self.maximum)
        self.fields["custom"].help_text = gettext(
            "From $%(minimum)s to $%(maximum)s; paid by card through Stripe."
        ) % {"minimum": self.minimum, "maximum": f"{self.maximum:,}"}

    def clean(self):
        data = super().clean()
        preset, custom = data.get("preset"), data.get("custom")
        if self.errors:
            return data
        if custom is not None:
            if not self.minimum <= custom <= self.maximum:
                self.add_error(
                    "custom",
                    gettext("Choose an amount from $%(minimum)s to $%(maximum)s.")
                    % {"minimum": self.minimum, "maximum": f"{self.maximum:,}"},
                )
                return data
            data["amount_cents"] = custom * CENTS_PER_USD
        elif preset is not None:
            data["amount_cents"] = preset * CENTS_PER_USD
        else:
            raise forms.ValidationError(gettext("Choose an amount to add."))
        return data


class RedeemForm(forms.Form):
    code = forms.CharField(
        max_length=64,
        label=_("Code"),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "placeholder": "XXXX-XXXX-XXXX-XXXX"}
        ),
    )


class AlertThresholdForm(forms.Form):
    threshold = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label=_("Email the owners when the balance falls below (USD)"),
        help_text=_("Leave empty to turn the alert off."),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )

    def threshold_nano(self) -> int | None:
        usd = self.cleaned_data.get("threshold")
        return None if usd is None else int(usd * NANO_PER_USD)
