"""
Account pages: signup, email verification, login, logout, password reset
and change, email change, and which tenant to act for.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils.dateformat import format as date_format
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import members as members_service
from accounts import throttles, twofactor
from accounts.models import Membership
from accounts.tenancy import SESSION_KEY
from onboarding import registration
from portal.forms import EmailChangeForm, LoginForm, SignupForm
from portal.templatetags.switchboard import usd_text
from portal.views.members import invitation_invalid
from portal.views.public import site_url

BACKEND = "django.contrib.auth.backends.ModelBackend"


def app_home() -> str:
    """The signed-in landing page: the dashboard, or the account page while
    no dashboard is routed."""
    try:
        return reverse("dashboard")
    except NoReverseMatch:
        return reverse("account")


def throttled(request, message: str):
    return render(
        request, "portal/account/throttled.html", {"message": message}, status=429
    )


def signup(request):
    """
    Create an account (and its tenant, unless joining one by invitation),
    sign the person in and email them a verification link. At most
    SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR signups per IP address.
    """
    invitation = None
    invite_token = request.POST.get("invitation") or request.GET.get("invitation")
    if invite_token:
        invitation = members_service.invitation_for_token(invite_token)
        if invitation is None:
            return invitation_invalid(request)
    if request.user.is_authenticated and invitation is None:
        return redirect(app_home())

    ip = throttles.client_ip(request)
    too_many = _(
        "Too many accounts were created from your network in the last hour. "
        "Please try again later."
    )
    if request.method == "POST":
        if throttles.SIGNUPS.used_up(ip):
            return throttled(request, too_many)
        form = SignupForm(request.POST, invitation=invitation)
        if form.is_valid():
            if not throttles.SIGNUPS.hit(ip):
                return throttled(request, too_many)
            data = form.cleaned_data
            if invitation is not None:
                user = members_service.invitation_signup(
                    invitation=invitation,
                    password=data["password"],
                    language_code=get_language(),
                )
                login(request, user, backend=BACKEND)
                request.session[SESSION_KEY] = invitation.tenant_id
                messages.success(
                    request,
                    _("Welcome to %(tenant)s on Switchboard.")
                    % {"tenant": invitation.tenant.name},
                )
                return redirect(app_home())
            try:
                user = registration.signup(
                    email=data["email"],
                    password=data["password"],
                    tenant_name=data["company"],
                    referred_by=data["ref"],
                    language_code=get_language(),
                )
            except IntegrityError:  # the same address, submitted twice at once
                form.add_error(
                    "email", _("An account with this address already exists.")
                )
                return render_signup(request, form, invitation, invite_token)
            login(request, user, backend=BACKEND)
            sent = registration.verification_send(user=user, site_url=site_url(request))
            if sent:
                messages.info(
                    request,
                    _(
                        "We sent a link to %(email)s. Follow it to confirm your "
                        "address and receive your starter credit."
                    )
                    % {"email": user.email},
                )
            else:
                messages.warning(
                    request,
                    _(
                        "Your account is ready, but the confirmation email could not "
                        "be sent. Use “Resend the email” below."
                    ),
                )
            return redirect("account")
    else:
        form = SignupForm(
            initial={"ref": request.GET.get("ref", "")}, invitation=invitation
        )
    return render_signup(request, form, invitation, invite_token)


def render_signup(request, form, invitation, invite_token):
    return render(
        request,
        "portal/account/signup.html",
        {
            "form": form,
            "invitation": invitation,
            "invite_token": invite_token if invitation else "",
            "credit": settings.SWITCHBOARD_STARTER_CREDIT_USD,
        },
    )


def verify_email(request, token):
    """Prove an address from its emailed link; give the starter credit due."""
    try:
        result = registration.verify(token=token)
    except registration.LinkExpired:
        return render(
            request,
            "portal/account/link_error.html",
            {
                "title": _("Link expired"),
                "error": _("This confirmation link has expired."),
                "offer_resend": True,
            },
            status=400,
        )
    except registration.LinkInvalid as exc:
        return render(
            request,
            "portal/account/link_error.html",
            {
                "title": _("Link not valid"),
                "error": str(exc),
                "offer_resend": True,
            },
            status=400,
        )
    if result.grant is not None:
        messages.success(
            request,
            _(
                "Your email address is confirmed. %(amount)s of starter credit is "
                "in your balance, valid until %(until)s."
            )
            % {
                "amount": usd_text(result.grant.amount),
                "until": date_format(result.grant.expires_at, _("F j, Y")),
            },
        )
    elif not result.newly_verified:
        messages.info(request, _("Your email address was already confirmed."))
    elif registration.starter_credit_had(result.user):
        messages.info(
            request,
            _(
                "Your email address is confirmed. This address already received "
                "its starter credit once, so none was added."
            ),
        )
    else:
        messages.success(request, _("Your email address is confirmed."))
    if request.user.is_authenticated and request.user.pk == result.user.pk:
        return redirect(app_home())
    return redirect(f"{reverse('login')}?next={app_home()}")


@login_required
@require_POST
def verify_email_resend(request):
    user = request.user
    if user.email_verified_at is not None:
        messages.info(request, _("Your email address is already confirmed."))
    elif not throttles.VERIFICATION_RESENDS.hit(str(user.pk)):
        messages.error(
            request,
            _("Several emails were sent in the last hour: please wait a little."),
        )
    elif registration.verification_send(user=user, site_url=site_url(request)):
        messages.info(
            request,
            _("We sent a new confirmation link to %(email)s.") % {"email": user.email},
        )
    else:
        messages.error(request, _("The email could not be sent; try again shortly."))
    return redirect("account")


@login_required
def account(request):
    """The person's address, password, and the tenants they belong to."""
    memberships = list(
        Membership.objects.filter(user=request.user)
        .select_related("tenant")
        .order_by("created_at", "pk")
    )
    if request.method == "POST":
        # Act for another of one's tenants from now on.
        chosen = request.POST.get("tenant", "")
        if any(str(m.tenant_id) == chosen for m in memberships):
            request.session[SESSION_KEY] = int(chosen)
            messages.success(request, _("Switched tenant."))
            return redirect(app_home())
        messages.error(request, _("You are not a member of that tenant."))
        return redirect("account")
    return render(request, "portal/account/account.html", {"memberships": memberships})


@login_required
def email_change(request):
    if request.method == "POST":
        form = EmailChangeForm(request.POST, user=request.user)
        if form.is_valid():
            new_email = form.cleaned_data["new_email"]
            if registration.email_change_request(
                user=request.user, new_email=new_email, site_url=site_url(request)
            ):
                messages.info(
                    request,
                    _(
                        "We sent a link to %(email)s. Your address changes when "
                        "you follow it."
                    )
                    % {"email": new_email},
                )
            else:
                messages.error(request, _("The email could not be sent; try again."))
            return redirect("account")
    else:
        form = EmailChangeForm(user=request.user)
    return render(request, "portal/account/email_change.html", {"form": form})


def email_change_confirm(request, token):
    try:
        result = registration.email_change_confirm(token=token)
    except registration.LinkExpired:
        error, status = _("This link has expired: request the change again."), 400
    except registration.LinkInvalid as exc:
        error, status = str(exc), 400
    except registration.EmailTaken as exc:
        error, status = str(exc), 409
    else:
        message = _("Your email address is now %(email)s.") % {
            "email": result.user.email
        }
        if result.grant is not None:
            message += " " + _("%(amount)s of starter credit was added.") % {
                "amount": usd_text(result.grant.amount)
            }
        messages.success(request, message)
        if request.user.is_authenticated and request.user.pk == result.user.pk:
            return redirect("account")
        return redirect("login")
    return render(
        request,
        "portal/account/link_error.html",
        {"title": _("Email not changed"), "error": error},
        status=status,
    )


class LoginView(auth_views.LoginView):
    """
    Django's login, with failed attempts counted in the login throttle that
    every login path shares (per IP and address, and per IP). Staff who must
    give a second factor are asked for it next.
    """

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def _email(self) -> str:
        return self.request.POST.get("username", "")

    def post(self, request, *args, **kwargs):
        if throttles.login_blocked(request, self._email()):
            return throttled(
                request,
                _(
                    "Too many failed attempts to log in to this account from your "
                    "network. Wait 15 minutes, or reset your password."
                ),
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttles.login_failed(self.request, self._email())
        return super().form_invalid(form)

    def form_valid(self, form):
        throttles.login_succeeded(self.request, self._email())
        response = super().form_valid(form)
        if twofactor.needs_verification(self.request):
            return redirect(
                f"{reverse('twofactor:verify')}?"
                + urlencode({REDIRECT_FIELD_NAME: response["Location"]})
            )
        return response

    def get_default_redirect_url(self):
        return app_home()


class LogoutView(auth_views.LogoutView):
    pass


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    success_url = reverse_lazy("account")
    success_message = "Your password was changed."


class PasswordResetView(auth_views.PasswordResetView):
    """
    Django's password reset, throttled per IP and per address. Every answer
    is the same whether an account uses the address or not: the "check your
    email" page, or the same "too many" page once a limit is reached.
    """

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    too_many = gettext_lazy(
        "Several password reset emails were asked for in the last hour. "
        "Check your inbox and spam folder, or try again later."
    )

    def post(self, request, *args, **kwargs):
        if throttles.PASSWORD_RESETS_PER_IP.used_up(throttles.client_ip(request)):
            return throttled(request, self.too_many)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        ip = throttles.client_ip(self.request)
        address = throttles.normalised_address(form.cleaned_data["email"])
        if not throttles.PASSWORD_RESETS_PER_IP.hit(ip):
            return throttled(self.request, self.too_many)
        if not throttles.PASSWORD_RESETS_PER_ADDRESS.hit(address):
            return throttled(self.request, self.too_many)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    pass


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    pass
