import uuid
from decimal import Decimal

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.forms import parse_usd
from billing.models import Plan, Prices
from console.filters import moment_parse
from console.prices import (
    DECIMAL,
    OPTIONAL_PRICES,
    PRICE_COLUMNS,
    THRESHOLD_COLUMN,
)

REQUIRED_PRICES = ("input_per_mtok", "output_per_mtok")
REASON_HELP = _("Recorded in the audit log with your name.")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        label=_("Reason"),
        widget=forms.TextInput(attrs={"size": 50}),
        help_text=REASON_HELP,
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(gettext("A reason is required."))
        return reason


class AdjustForm(ReasonForm):
    """A credit or debit. `token` identifies the form as rendered: a second
    submission finds its ledger reference taken and adjusts nothing."""

    direction = forms.ChoiceField(
        label=_("Direction"), choices=[("credit", _("Credit")), ("debit", _("Debit"))]
    )
    amount = forms.CharField(
        label=_("Amount (USD)"),
        max_length=20,
        help_text=_('Exact, e.g. "25" or "0.50".'),
    )
    token = forms.RegexField(
        regex=r"^[0-9a-f]{32}$",
        widget=forms.HiddenInput,
        error_messages={
            "required": _("This form is incomplete: reload the page and try again."),
            "invalid": _("This form was altered: reload the page and try again."),
        },
    )

    field_order = ["direction", "amount", "reason", "token"]

    @classmethod
    def fresh(cls) -> "AdjustForm":
        return cls(initial={"token": uuid.uuid4().hex})

    def clean_amount(self) -> int:
        nano = parse_usd(self.cleaned_data["amount"])
        if nano == 0:
            raise forms.ValidationError(
                gettext("An adjustment must change the balance.")
            )
        return nano

    def signed_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        return -amount if self.cleaned_data["direction"] == "debit" else amount


class PlanForm(ReasonForm):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.all(),
        required=False,
        label=_("Plan"),
        empty_label=_("No plan (catalog prices)"),
    )

    field_order = ["plan", "reason"]


class PriceForm(ReasonForm):
    """New prices for a model, now or from a set time."""

    effective_at = forms.CharField(
        label=_("Effective at"),
        required=False,
        help_text=_(
            "ISO 8601, e.g. 2025-07-01T00:00:00Z (naive times are UTC). Empty: now."
        ),
    )

    def __init__(self, *args, model_price=None, **kwargs):
        super().__init__(*args, **kwargs)
        fields = _price_fields()
        for name in PRICE_COLUMNS:
            required = name in REQUIRED_PRICES
            self.fields[name] = forms.CharField(
                label=fields[name].verbose_name,
                required=required,
                max_length=20,
                initial=_text(getattr(model_price, name)) if model_price else "",
                help_text=gettext("Empty: billed as input.")
                if name in OPTIONAL_PRICES
                else ""
                if required
                else gettext("Empty: none.")
                if name in Prices.FLAT_FIELDS
                else fields[name].help_text,
            )
        self.fields[THRESHOLD_COLUMN] = forms.IntegerField(
            label=fields[THRESHOLD_COLUMN].verbose_name,
            required=False,
            min_value=1,
            initial=getattr(model_price, THRESHOLD_COLUMN, None),
            help_text=fields[THRESHOLD_COLUMN].help_text,
        )
        long_first = PRICE_COLUMNS.index("long_input_per_mtok")
        self.order_fields(
            [
                *PRICE_COLUMNS[:long_first],
                THRESHOLD_COLUMN,
                *PRICE_COLUMNS[long_first:],
                "effective_at",
                "reason",
            ]
        )

    def clean(self):
        cleaned = super().clean()
        for name in PRICE_COLUMNS:
            text = (cleaned.get(name) or "").strip()
            if not text:
                cleaned[name] = Decimal(0) if name in Prices.FLAT_FIELDS else None
                continue
            if not DECIMAL.fullmatch(text):
                self.add_error(
                    name, gettext('A price in USD such as "2.50" or "0.075".')
                )
                continue
            cleaned[name] = Decimal(text)
        text = (cleaned.get("effective_at") or "").strip()
        cleaned["effective_at"] = None
        if text:
            try:
                cleaned["effective_at"] = moment_parse(text)
            except (ValueError, OverflowError):
                self.add_error("effective_at", gettext("An ISO 8601 date or time."))
        return cleaned

    def prices(self) -> dict:
        return {
            name: self.cleaned_data[name] for name in (*PRICE_COLUMNS, THRESHOLD_COLUMN)
        }


class PriceImportForm(ReasonForm):
    file = forms.FileField(label=_("CSV file"))

    field_order = ["file", "reason"]


def _price_fields() -> dict:
    from billing.models import ModelPrice

    names = (*PRICE_COLUMNS, THRESHOLD_COLUMN)
    return {f.name: f for f in ModelPrice._meta.get_fields() if f.name in names}


def _text(value) -> str:
    if value is None:
        return ""
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)
