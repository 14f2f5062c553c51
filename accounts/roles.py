"""
Staff roles: who may see the console and the admin, and who may change what.

Two roles are Django groups (created with their admin permissions by
console/migrations/0001_roles.py, which runs once every app's models exist):

- support: reads everything, suspends and resumes tenants, resends
  verification emails;
- finance: everything support does, plus money (credits and debits, plans,
  payments, prices) and channels (upstreams, their keys and cost prices).

Superusers may do everything. A staff account in neither group reaches
nothing until it is given a role; a customer (not staff) never does.
"""

from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

SUPPORT = "support"
FINANCE = "finance"
ROLES = (SUPPORT, FINANCE)

# What each capability needs: the roles allowed (superusers always are).
READ = "read"
TENANT_STATUS = "tenant_status"
MONEY = "money"
CHANNELS = "channels"
CAPABILITIES = {
    READ: {SUPPORT, FINANCE},
    TENANT_STATUS: {SUPPORT, FINANCE},
    MONEY: {FINANCE},
    CHANNELS: {FINANCE},
}
DESCRIPTIONS = {
    READ: _("see the console"),
    TENANT_STATUS: _("suspend or resume tenants and resend verification emails"),
    MONEY: _("change money, plans, payments or prices"),
    CHANNELS: _("change channels, upstream keys or cost prices"),
}


def is_staff(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_staff or user.is_superuser)
    )


def user_roles(user) -> frozenset[str]:
    """The staff roles of `user` (read once per request object)."""
    if not is_staff(user):
        return frozenset()
    cached = getattr(user, "_staff_roles", None)
    if cached is None:
        cached = frozenset(
            user.groups.filter(name__in=ROLES).values_list("name", flat=True)
        )
        user._staff_roles = cached
    return cached


def can(user, capability: str) -> bool:
    """Whether `user` may exercise `capability` (READ, MONEY, ...)."""
    if not is_staff(user):
        return False
    if user.is_superuser:
        return True
    return bool(CAPABILITIES[capability] & user_roles(user))


def role_label(user) -> str:
    if user.is_superuser:
        return gettext("superuser")
    return ", ".join(sorted(user_roles(user))) or gettext("no role")


class RolePermissionsMixin:
    """
    For ModelAdmins: admin actions gated by staff role, as
    @admin.action(permissions=["money"]) (or "channels").
    Without `permissions` an action is open to anyone who may view the list.
    """

    def has_money_permission(self, request) -> bool:
        return can(request.user, MONEY)

    def has_channels_permission(self, request) -> bool:
        return can(request.user, CHANNELS)


def forbidden(request, capability: str):
    """The staff areas' 403 page, saying what the role does not allow."""
    from django.contrib import admin

    return render(
        request,
        "console/forbidden.html",
        {
            **admin.site.each_context(request),
            "title": gettext("Not allowed"),
            "needed": DESCRIPTIONS[capability],
            "role": role_label(request.user),
        },
        status=403,
    )
