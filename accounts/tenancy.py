"""
Which tenant a signed-in person is acting for, and with what role.

A person may belong to several tenants; the session remembers the one they
picked (SESSION_KEY), and the oldest membership is the default.
"""

from accounts.models import Membership

SESSION_KEY = "tenant_id"


def current_membership(request) -> Membership | None:
    """Return the membership the request acts through, or None (signed out,
    or a person without a tenant)."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("tenant")
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if chosen is not None:
        membership = memberships.filter(tenant_id=chosen).first()
        if membership is not None:
            return membership
    return memberships.order_by("created_at", "pk").first()


def is_owner(membership: Membership | None) -> bool:
    return membership is not None and membership.role == Membership.Role.OWNER
