"""
The staff's second-factor pages, under /console/2fa/ so that the staff
areas' strict headers (no-store, CSP) cover them: enrolment (a QR code and
the secret, then a code, then the recovery codes shown once) and the code
asked at each login.
"""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import throttles, twofactor
from accounts.roles import is_staff


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "inputmode": "text",
                "spellcheck": "false",
            }
        ),
    )


def _next_url(request) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(
        REDIRECT_FIELD_NAME, ""
    )
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("console:dashboard")


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


def _page(request, template: str, context: dict, status: int = 200):
    return render(
        request,
        template,
        {**admin.site.each_context(request), **context},
        status=status,
    )


def throttled(request):
    """The staff login pages' 429: too many failures, wait the window."""
    return _page(
        request,
        "console/login_throttled.html",
        {
            "title": _("Too many attempts"),
            "minutes": throttles.LOGIN_FAILURES.window // 60,
        },
        status=429,
    )


def _staff_only(request):
    """Send people who are not signed-in staff to the admin's login."""
    if is_staff(request.user):
        return None
    return redirect_to_login(
        request.get_full_path(), reverse("admin:login"), REDIRECT_FIELD_NAME
    )


def verify(request):
    """Ask a signed-in staff member for a code from their authenticator, or
    a recovery code."""
    if (refused := _staff_only(request)) is not None:
        return refused
    user = request.user
    next_url = _next_url(request)
    if not twofactor.is_enrolled(user):
        return redirect(_with_next("twofactor:enrol", next_url))
    if twofactor.is_verified(request):
        return redirect(next_url)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if throttles.login_blocked(request, user.email):
            return throttled(request)
        if form.is_valid():
            device = twofactor.verify(user=user, code=form.cleaned_data["code"])
            if device is not None:
                twofactor.session_verify(request, device)
                throttles.login_succeeded(request, user.email)
                return redirect(next_url)
            throttles.login_failed(request, user.email)
            form.add_error("code", _("That code is not right. Try the current one."))
    return _page(
        request,
        "twofactor/verify.html",
        {"title": _("Two-factor authentication"), "form": form, "next": next_url},
    )


def enrol(request):
    """
    Set up a staff member's authenticator: show its secret as a QR code and
    as text, confirm it with a code, then show the recovery codes once.
    """
    if (refused := _staff_only(request)) is not None:
        return refused
    user = request.user
    next_url = _next_url(request)
    if twofactor.is_enrolled(user):
        # A second authenticator needs the first one's code: no enrolling
        # over an existing device with a password alone.
        return redirect(_with_next("twofactor:verify", next_url))
    device = twofactor.enrolment_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if throttles.login_blocked(request, user.email):
            return throttled(request)
        if form.is_valid():
            codes = twofactor.enrolment_confirm(
                user=user, device=device, code=form.cleaned_data["code"]
            )
            if codes is not None:
                device.refresh_from_db()
                twofactor.session_verify(request, device)
                throttles.login_succeeded(request, user.email)
                return _page(
                    request,
                    "twofactor/recovery_codes.html",
                    {
                        "title": _("Your recovery codes"),
                        "codes": codes,
                        "next": next_url,
                    },
                )
            throttles.login_failed(request, user.email)
            form.add_error("code", _("That code is not right. Try the current one."))
    return _page(
        request,
        "twofactor/enrol.html",
        {
            "title": _("Set up two-factor authentication"),
            "form": form,
            "next": next_url,
            # segno's own markup: paths drawn from the URL, no user text.
            "qr_svg": mark_safe(twofactor.qr_svg(device)),  # noqa: S308
            "secret": twofactor.secret_text(device),
        },
    )
