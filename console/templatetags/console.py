"""Display helpers for the console's pages (money uses the portal's `usd`)."""

from django import template

from billing.money import cents_to_nano, format_usd_exact

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
    """Whole cents as exact dollars: 1250 -> "$12.50"."""
    if value is None or value == "":
        return ""
    return format_usd_exact(cents_to_nano(int(value)), grouping=True)
