"""
What every page's layout needs: the membership the request acts through
(tenant and role) and that tenant's wallet, looked up only if a template
reads them and at most once per request.
"""

from django.utils.functional import SimpleLazyObject

from accounts.tenancy import current_membership, is_owner
from billing.models import Wallet


def request_membership(request):
    """Return current_membership(request), computed once per request."""
    if not hasattr(request, "_portal_membership"):
        request._portal_membership = current_membership(request)
    return request._portal_membership


def request_wallet(request) -> Wallet | None:
    """Return the current tenant's wallet (with its plan), once per request."""
    if not hasattr(request, "_portal_wallet"):
        membership = request_membership(request)
        request._portal_wallet = (
            None
            if membership is None
            else Wallet.objects.filter(tenant_id=membership.tenant_id)
            .select_related("plan")
            .first()
        )
    return request._portal_wallet


def portal(request):
    return {
        "membership": SimpleLazyObject(lambda: request_membership(request)),
        "current_tenant": SimpleLazyObject(
            lambda: getattr(request_membership(request), "tenant", None)
        ),
        "is_owner": SimpleLazyObject(lambda: is_owner(request_membership(request))),
        "header_wallet": SimpleLazyObject(lambda: request_wallet(request)),
    }
