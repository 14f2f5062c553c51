"""Display helpers for the console's pages (money uses the portal's `usd`)."""

from django import template

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
    """Whole cents as dollars: 1250 -> "12.50" (integer arithmetic)."""
    if value is None:
        return ""
    value = int(value)
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(value), 100)
    return f"{sign}{whole:,}.{part:02d}"
