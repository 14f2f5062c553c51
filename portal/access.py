"""Who may open the signed-in pages: members of a tenant, some only owners."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from accounts.tenancy import is_owner
from portal.context_processors import request_membership


def tenant_view(view=None, *, owner: bool = False):
    """
    Let signed-in members of a tenant in, setting `request.tenant` and
    `request.membership`; with `owner`, only the tenant's owners (403 for
    members). Signed-out visitors are sent to the login page; a person who
    belongs to no tenant to their account page, which says so.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = request_membership(request)
            if membership is None:
                messages.info(request, _("You are not a member of any tenant."))
                return redirect("account")
            if owner and not is_owner(membership):
                raise PermissionDenied(_("Only the tenant's owners can do this."))
            request.membership = membership
            request.tenant = membership.tenant
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
