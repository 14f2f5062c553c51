"""
Template filters for money and statuses, shared by portal and console pages.

    {% load switchboard %}
    {{ wallet.balance|usd }}          -> <span title="$0.004215000">$0.0042</span>
    {{ row.input|usd_rate }}          -> $0.02125 (a price: exact)
    {{ price.input_per_mtok|usd_price }} -> $0.40, $0.025
"""

from decimal import Decimal

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from billing.money import (
    format_usd_amount,
    format_usd_exact,
    format_usd_full,
    format_usd_human,
    format_usd_text,
)

register = template.Library()


def usd_html(nano: int) -> SafeString:
    """An amount of nano-USD for people, the exact figure on hover."""
    return format_html(
        '<span title="{}">{}</span>', format_usd_full(nano), format_usd_human(nano)
    )


@register.filter
def usd(nano) -> str:
    """Format an integer amount of nano-USD for people (format_usd_human),
    in a <span> whose title holds the exact amount."""
    if nano is None or nano == "":
        return ""
    return usd_html(int(nano))


@register.filter
def usd_text(nano) -> str:
    """The amount for plain text such as emails (format_usd_text)."""
    if nano is None or nano == "":
        return ""
    return format_usd_text(int(nano))


@register.filter
def usd_rate(nano) -> str:
    """Format a price in nano-USD (per 1M tokens, per image) exactly: a
    price is a rate, rounding it would misstate it ("$0.02125")."""
    if nano is None or nano == "":
        return ""
    return format_usd_exact(int(nano), grouping=True)


@register.filter
def usd_price(value) -> str:
    """Format a Decimal amount of USD (a catalog price) exactly."""
    if value is None or value == "":
        return ""
    return format_usd_amount(Decimal(value), grouping=True)


# Every status a page shows, in the words people use: usage records, payments
# (with the console's extra filters) and API keys. The models' own choice
# labels stay as they are (changing them needs a migration).
STATUS_LABELS = {
    # relay.models.UsageRecord.Status, and the console's "any error" filter.
    "ok": _("OK"),
    "client_closed": _("Client left"),
    "upstream_closed": _("Upstream dropped the stream"),
    "upstream_error": _("Upstream error"),
    "rejected": _("Rejected by upstream"),
    "error": _("Any error"),
    # billing.models.Payment.Status and the console's payment filters.
    "open": _("Awaiting payment"),
    "processing": _("Payment processing"),
    "paid": _("Paid"),
    "failed": _("Failed"),
    "expired": _("Expired"),
    "refunded": _("Refunded"),
    "disputed": _("Disputed"),
    "stuck": _("Needs reconciliation"),
    # accounts.models.ApiKey.Status.
    "active": _("Active"),
    "revoked": _("Revoked"),
    # relay.models.UsageRecord.UsageSource: where a request's usage came from.
    "reported": _("Reported by upstream"),
    "estimated": _("Estimated"),
    "none": _("No usage"),
    "cache": _("Response cache"),
}


@register.filter
def status_label(status) -> str:
    """A status value as people read it: "client_closed" -> "Client left"."""
    if status is None or status == "":
        return ""
    status = str(status)
    return str(STATUS_LABELS.get(status, status.replace("_", " ").capitalize()))


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
