"""The console's guard: staff only, each view behind a role capability."""

from functools import wraps

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from accounts.roles import READ, can, forbidden, is_staff


def console_view(capability: str = READ):
    """
    Guard a console view: people who are not staff go to the admin's login
    page (a customer's session is no way in), staff whose role lacks
    `capability` get a 403 page.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not is_staff(request.user):
                return redirect_to_login(
                    request.get_full_path(), reverse("admin:login"), REDIRECT_FIELD_NAME
                )
            if not can(request.user, READ) or not can(request.user, capability):
                return forbidden(request, capability)
            return view(request, *args, **kwargs)

        wrapped.console_capability = capability
        return wrapped

    return decorator
