"""
The staff areas (/admin/ and /console/): failed admin logins throttled per
IP and address, and strict security headers on every response.
"""

from django.contrib import admin
from django.shortcuts import render
from django.urls import reverse

from accounts import throttles

# The admin's own pages load scripts and styles from files only (Django 5.2
# has no inline script), so nothing inline is allowed. Charts are inline
# SVG drawn with presentation attributes, which CSP does not govern.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class StaffAreaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._prefixes: tuple[str, ...] | None = None
        self._login_path: str | None = None

    def _paths(self) -> tuple[tuple[str, ...], str]:
        # Resolved on first use: the URLconf is not loaded at start-up.
        if self._prefixes is None:
            self._prefixes = (reverse("admin:index"), reverse("console:dashboard"))
            self._login_path = reverse("admin:login")
        return self._prefixes, self._login_path

    def __call__(self, request):
        prefixes, login_path = self._paths()
        if not request.path.startswith(prefixes):
            return self.get_response(request)
        if request.method == "POST" and request.path == login_path:
            response = self._login(request)
        else:
            response = self.get_response(request)
        return secure(response)

    def _login(self, request):
        ident = _login_ident(request)
        if throttles.ADMIN_LOGIN_FAILURES.used_up(ident):
            return render(
                request,
                "console/login_throttled.html",
                {
                    **admin.site.each_context(request),
                    "title": "Too many attempts",
                    "minutes": throttles.ADMIN_LOGIN_FAILURES.window // 60,
                },
                status=429,
            )
        response = self.get_response(request)
        if response.status_code == 200:
            # The admin's login view answers a wrong password with the form
            # again (200) and a success with a redirect.
            throttles.ADMIN_LOGIN_FAILURES.hit(ident)
        elif response.status_code in (301, 302, 303) and request.user.is_authenticated:
            throttles.ADMIN_LOGIN_FAILURES.reset(ident)
        return response


def _login_ident(request) -> str:
    email = str(request.POST.get("username", "")).strip().lower()[:254]
    return f"{throttles.client_ip(request)}|{email}"


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
