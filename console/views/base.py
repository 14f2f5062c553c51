"""What every console page shares: the admin's chrome and the console's menu."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts import roles

# (URL name, label, the prefix of the URL names of the section's pages)
SECTIONS = (
    ("console:dashboard", _("Dashboard"), "dashboard"),
    ("console:tenants", _("Tenants"), "tenant"),
    ("console:channels", _("Channels"), "channel"),
    ("console:prices", _("Prices"), "price"),
    ("console:auto_tiers", _("Auto model"), "auto"),
    ("console:usage", _("Usage"), "usage"),
    ("console:payments", _("Payments"), "payment"),
    ("console:audit", _("Audit log"), "audit"),
)
PAGE_SIZE = 50


def console_context(request, title: str) -> dict:
    match = request.resolver_match
    current = (match.url_name or "") if match else ""
    return {
        **admin.site.each_context(request),
        "title": title,
        "sections": [
            {
                "url": reverse(name),
                "label": label,
                "current": current.startswith(prefix),
            }
            for name, label, prefix in SECTIONS
        ],
        "role": roles.role_label(request.user),
        "can_money": roles.can(request.user, roles.MONEY),
        "can_channels": roles.can(request.user, roles.CHANNELS),
        "can_tenant_status": roles.can(request.user, roles.TENANT_STATUS),
    }


def render_console(request, template: str, title: str, context: dict, status=200):
    return render(
        request,
        template,
        {**console_context(request, title), **context},
        status=status,
    )


def page_of(request, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))
