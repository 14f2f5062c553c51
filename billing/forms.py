"""Form-field parsing shared by every staff form that takes money."""

from django import forms
from django.utils.translation import gettext as _

from billing.models import USD_AMOUNT
from billing.money import InexactPrice, usd_to_nano


def parse_usd(text: str, *, negative: bool = False) -> int:
    """
    Return a typed USD amount ("25", "0.50", "-3" if `negative`) in nano-USD,
    or raise ValidationError saying what is wrong with it.
    """
    text = text.strip()
    sign = 1
    if negative and text.startswith(("-", "+")):
        sign, text = (-1 if text[0] == "-" else 1), text[1:].strip()
    text = text.removeprefix("$")
    if not USD_AMOUNT.fullmatch(text):
        raise forms.ValidationError(
            _('Enter an amount in USD such as "25", "0.50" or "-10".')
            if negative
            else _('Enter an amount in USD such as "25" or "0.50".')
        )
    try:
        return sign * usd_to_nano(text)
    except InexactPrice as exc:  # unreachable with USD_AMOUNT's 9 decimals
        raise forms.ValidationError(str(exc)) from exc
