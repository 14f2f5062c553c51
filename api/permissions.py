"""Who may do what: members read, owners change."""

from rest_framework import permissions

from accounts.tenancy import is_owner
from api.tenancy import api_membership


class IsTenantMember(permissions.BasePermission):
    """The caller acts for a tenant (every API object belongs to one)."""

    message = "You are not a member of any tenant."

    def has_permission(self, request, view) -> bool:
        return api_membership(request) is not None


class OwnersChange(permissions.BasePermission):
    """
    Anyone in the tenant may read; only its owners may change anything.
    A view names what is refused in `owner_action`, e.g. "manage API keys".
    """

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        if is_owner(api_membership(request)):
            return True
        action = getattr(view, "owner_action", "make changes")
        self.message = f"Only owners of the tenant can {action}."
        return False
