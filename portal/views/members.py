"""
The current tenant's members. Everyone in the tenant sees the list; only
owners invite, change roles and remove (others get 403). Every object is
looked up within the current tenant, so another tenant's ids give 404.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import members as service
from accounts.models import Invitation, Membership
from accounts.tenancy import SESSION_KEY, is_owner
from onboarding import tenants
from portal.access import tenant_view
from portal.forms import InviteForm, RoleForm
from portal.views.public import site_url


def _list(request, membership, invite_form=None, status=200):
    tenant = membership.tenant
    members = (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .order_by("created_at", "pk")
    )
    owner = is_owner(membership)
    invitations = (
        Invitation.objects.filter(tenant=tenant, accepted_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
        if owner
        else []
    )
    return render(
        request,
        "portal/members/list.html",
        {
            "members": members,
            "invitations": invitations,
            "invite_form": invite_form or (InviteForm() if owner else None),
            "roles": Membership.Role.choices,
        },
        status=status,
    )


@tenant_view
def member_list(request):
    membership = request.membership
    return _list(request, membership)


@require_POST
@tenant_view(owner=True)
def member_invite(request):
    membership = request.membership
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _list(request, membership, invite_form=form, status=400)
    try:
        invitation = service.member_invite(
            tenant=membership.tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            site_url=site_url(request),
        )
    except service.MemberError as exc:
        form.add_error("email", str(exc))
        return _list(request, membership, invite_form=form, status=400)
    messages.success(
        request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
    )
    return redirect("members")


def _member(membership, pk) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "tenant"),
        pk=pk,
        tenant_id=membership.tenant_id,
    )


@require_POST
@tenant_view(owner=True)
def member_role(request, pk):
    membership = request.membership
    target = _member(membership, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("members")
    try:
        service.member_role_set(
            membership=target, role=form.cleaned_data["role"], actor=request.user
        )
    except service.MemberError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("%(email)s is now %(role)s.")
            % {
                "email": target.user.email,
                "role": Membership.Role(form.cleaned_data["role"]).label.lower(),
            },
        )
    return redirect("members")


@require_POST
@tenant_view(owner=True)
def member_remove(request, pk):
    membership = request.membership
    target = _member(membership, pk)
    try:
        service.member_remove(membership=target, actor=request.user)
    except service.MemberError as exc:
        messages.error(request, str(exc))
        return redirect("members")
    messages.success(
        request, _("%(email)s was removed.") % {"email": target.user.email}
    )
    if target.pk == membership.pk:  # one removed oneself
        request.session.pop(SESSION_KEY, None)
        return redirect("account")
    return redirect("members")


@require_POST
@tenant_view(owner=True)
def invitation_revoke(request, pk):
    membership = request.membership
    invitation = get_object_or_404(
        Invitation, pk=pk, tenant_id=membership.tenant_id, accepted_at__isnull=True
    )
    service.invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(
        request,
        _("The invitation of %(email)s was withdrawn.") % {"email": invitation.email},
    )
    return redirect("members")


def invitation_invalid(request):
    """The answer to a link of an invitation that cannot be used."""
    return render(
        request,
        "portal/account/link_error.html",
        {
            "title": _("Invitation not valid"),
            "error": _(
                "This invitation was already used, withdrawn or has "
                "expired. Ask the tenant's owner for a new one."
            ),
        },
        status=400,
    )


def invitation_accept(request, token):
    """
    The page an invitation's link opens: join when signed in with the
    invited address, otherwise sign up or log in with it first.
    """
    invitation = service.invitation_for_token(token)
    if invitation is None:
        return invitation_invalid(request)
    user = request.user
    if request.method == "POST" and user.is_authenticated:
        try:
            tenants.invitation_accept(invitation=invitation, user=user)
        except service.MemberError as exc:
            messages.error(request, str(exc))
        else:
            request.session[SESSION_KEY] = invitation.tenant_id
            messages.success(
                request,
                _("You joined %(tenant)s.") % {"tenant": invitation.tenant.name},
            )
            return redirect("members")
    email_matches = (
        user.is_authenticated and user.email.lower() == invitation.email.lower()
    )
    return render(
        request,
        "portal/members/invitation.html",
        {
            "invitation": invitation,
            "token": token,
            "email_matches": email_matches,
            "login_url": f"{reverse('login')}?next={request.path}",
            "signup_url": f"{reverse('signup')}?invitation={token}",
        },
    )
