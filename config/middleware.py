"""
Security headers of every page outside the staff areas (those have
console.middleware's): a strict Content-Security-Policy on the portal and the
public pages, a stricter one on the management API (/api/), and
`Cache-Control: no-store` wherever a response may hold a secret or a
tenant's data. And the language of every page, except the management API's.
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation


def content_security_policy(*form_targets: str) -> str:
    """
    The pages' policy: scripts and styles come from files only, no inline
    <script>, style="" or <style> anywhere (charts are inline SVG drawn with
    presentation attributes, which CSP does not govern). Forms post to this
    site and to `form_targets`.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            " ".join(["form-action 'self'", *form_targets]),
            "frame-ancestors 'none'",
        ]
    )


# A top-up's form is answered with a redirect to Stripe Checkout, which
# form-action governs too.
PAGE_POLICY = content_security_policy("https://checkout.stripe.com")

# The API answers JSON, which must never run or load anything as a page.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The API's one page for people, Swagger UI (/api/docs/): its files and the
# schema it fetches come from this site, as on every other page.
API_DOCS_PATH = "/api/docs/"
API_DOCS_POLICY = content_security_policy()

# Pages that show nothing of the visitor's: a shared cache may keep them for
# signed-out visitors. Every other page may carry a secret (a new API key or
# management token, a link with a token in its address) or a tenant's data.
PUBLIC_PAGES = frozenset({"home", "pricing", "docs"})


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.api_prefix = "/api/"

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(self.api_prefix):
            policy = API_DOCS_POLICY if request.path == API_DOCS_PATH else API_POLICY
            response.headers.setdefault("Content-Security-Policy", policy)
            response.headers["Cache-Control"] = "no-store"
            return response
        if not (settings.DEBUG and _is_error(response)):
            # Django's debug pages (a 404's, a 500's) are styled inline.
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        if not _public(request):
            response.headers["Cache-Control"] = "no-store"
        return response


def _is_error(response) -> bool:
    return response.status_code == 404 or response.status_code >= 500


def _public(request) -> bool:
    match = request.resolver_match
    user = getattr(request, "user", None)
    return (
        match is not None
        and match.url_name in PUBLIC_PAGES
        and not match.namespace
        and not (user is not None and user.is_authenticated)
    )


class LocaleMiddleware(DjangoLocaleMiddleware):
    """
    Django's (the switcher's cookie, else Accept-Language), except on the
    management API (/api/): programs parse its errors, so they stay in
    English whatever the request asks, as /v1's do (as OpenAI's do). Here
    rather than in the API's exception handler: DRF writes a validation
    error's messages when it finds them, before any handler runs.
    """

    api_prefix = "/api/"

    def process_request(self, request):
        if not request.path_info.startswith(self.api_prefix):
            return super().process_request(request)
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()
        return None

    def process_response(self, request, response):
        if request.path_info.startswith(self.api_prefix):
            # One language: no Content-Language, no Vary: Accept-Language.
            return response
        return super().process_response(request, response)
