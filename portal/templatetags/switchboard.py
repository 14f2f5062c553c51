"""
Template filters for money, shared by every portal page.

    {% load switchboard %}
    {{ wallet.balance|usd }}          -> $12.50, $0.000150, -$3.00
    {{ price.input_per_mtok|usd_price }} -> $0.40, $0.025
"""

from decimal import Decimal

from django import template
from django.urls import NoReverseMatch, reverse

from billing.money import format_usd_amount, format_usd_exact

register = template.Library()


@register.filter
def usd(nano) -> str:
    """Format an integer amount of nano-USD as dollars, exactly."""
    if nano is None or nano == "":
        return ""
    return format_usd_exact(int(nano), grouping=True)


@register.filter
def usd_price(value) -> str:
    """Format a Decimal amount of USD (a catalog price) exactly."""
    if value is None or value == "":
        return ""
    return format_usd_amount(Decimal(value), grouping=True)


@register.inclusion_tag("portal/includes/nav_item.html", takes_context=True)
def nav_item(context, url_name: str, label: str, exact: bool = False):
    """
    A navigation link marked aria-current on its own pages (the page itself
    when `exact`, else anything under it). Renders nothing if `url_name` is
    not routed, so the layout never breaks on a section still to come.
    """
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return {"url": None}
    request = context.get("request")
    path = request.path if request is not None else ""
    current = path == url if exact else path.startswith(url)
    return {"url": url, "label": label, "current": current}
