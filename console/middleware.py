"""
The staff areas (/admin/ and /console/): failed admin logins counted in the
login throttle every login path shares, the second factor required of staff
(accounts/twofactor.py), and strict security headers on every response.
"""

from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import reverse

from accounts import throttles, twofactor, twofactor_views
from config.middleware import content_security_policy

# The admin's own pages load scripts and styles from files only (Django 5.2
# has no inline script); their forms post to this site only.
CONTENT_SECURITY_POLICY = content_security_policy()


class StaffAreaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._prefixes: tuple[str, ...] | None = None
        self._login_path: str | None = None
        self._twofactor_path: str | None = None

    def _paths(self) -> tuple[tuple[str, ...], str, str]:
        # Resolved on first use: the URLconf is not loaded at start-up.
        if self._prefixes is None:
            self._prefixes = (reverse("admin:index"), reverse("console:dashboard"))
            self._login_path = reverse("admin:login")
            self._twofactor_path = reverse("twofactor:verify")
        return self._prefixes, self._login_path, self._twofactor_path

    def __call__(self, request):
        prefixes, login_path, twofactor_path = self._paths()
        if not request.path.startswith(prefixes):
            return self.get_response(request)
        if request.method == "POST" and request.path == login_path:
            response = self._login(request)
        elif not request.path.startswith(
            twofactor_path
        ) and twofactor.needs_verification(request):
            # Staff signed in by any path (/login/, /admin/login/) but
            # without a second factor in this session: give it first.
            response = redirect(
                f"{twofactor_path}?"
                + urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
            )
        else:
            response = self.get_response(request)
        return secure(response)

    def _login(self, request):
        email = request.POST.get("username", "")
        if throttles.login_blocked(request, email):
            return twofactor_views.throttled(request)
        response = self.get_response(request)
        if response.status_code == 200:
            # The admin's login view answers a wrong password with the form
            # again (200) and a success with a redirect.
            throttles.login_failed(request, email)
        elif response.status_code in (301, 302, 303) and request.user.is_authenticated:
            throttles.login_succeeded(request, email)
        return response


def secure(response):
    """Add the staff areas' security headers to `response`."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    # Balances, keys and customers' data must not linger in caches.
    response.headers["Cache-Control"] = "no-store"
    return response
