"""Display helpers for the console's pages (money uses the portal's `usd`)."""

from django import template

from billing.money import cents_to_nano
from portal.templatetags.switchboard import usd_html

register = template.Library()


@register.filter
def percent(fraction) -> str:
    """0.1234 -> "12.3%"; nothing for None (no traffic)."""
    if fraction is None:
        return "—"
    return f"{fraction * 100:.1f}%"


@register.filter
def ms(value) -> str:
    if value is None:
        return "—"
    return f"{round(value):,} ms"


@register.filter
def cents(value) -> str:
    """Whole cents as the portal's `usd` shows them: 1250 -> "$12.50"."""
    if value is None or value == "":
        return ""
    return usd_html(cents_to_nano(int(value)))
