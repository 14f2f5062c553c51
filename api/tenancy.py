"""The tenant and role an API request acts for."""

from accounts.models import Membership
from accounts.tenancy import current_membership
from api.models import ManagementToken

_ATTRIBUTE = "_api_membership"


def api_membership(request) -> Membership | None:
    """
    Return the membership `request` acts through: its management token's
    (checked when the token was authenticated), else the signed-in person's
    current one; None for a person without a tenant. Computed once per
    request.
    """
    if not hasattr(request, _ATTRIBUTE):
        if isinstance(request.auth, ManagementToken):
            membership = request.auth.membership
        else:
            membership = current_membership(request)
        setattr(request, _ATTRIBUTE, membership)
    return getattr(request, _ATTRIBUTE)
