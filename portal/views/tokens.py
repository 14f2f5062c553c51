"""Management tokens for /api/: list, create (the secret shown once), revoke."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from api.selectors import tenant_tokens
from api.services import token_create, token_revoke
from portal.access import tenant_view


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label=_("Name"),
        help_text=_("To recognise the token later, e.g. “deploy script”."),
    )


@tenant_view(owner=True)
def token_list(request):
    tokens = tenant_tokens(tenant_id=request.tenant.pk).order_by("-created_at")
    return render(request, "portal/app/tokens/list.html", {"tokens": tokens})


# never_cache: the answer to a successful POST holds the secret; no browser
# or proxy may keep a copy of it.
@never_cache
@require_http_methods(["GET", "POST"])
@tenant_view(owner=True)
def token_create_view(request):
    form = TokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, secret = token_create(
            user=request.user, tenant=request.tenant, name=form.cleaned_data["name"]
        )
        # Rendered, not redirected: the secret exists only in this response.
        return render(
            request,
            "portal/app/tokens/created.html",
            {"token": token, "secret": secret},
        )
    return render(request, "portal/app/tokens/create.html", {"form": form})


@require_http_methods(["GET", "POST"])
@tenant_view(owner=True)
def token_revoke_view(request, token_id: int):
    # Only this tenant's tokens: another tenant's id is a 404.
    token = get_object_or_404(tenant_tokens(tenant_id=request.tenant.pk), pk=token_id)
    if request.method == "POST":
        if token.revoked_at is None:
            token_revoke(token=token)
            messages.success(
                request,
                gettext("Revoked “%(name)s”. Requests with it are refused.")
                % {"name": token.name},
            )
        return redirect("tokens")
    return render(request, "portal/app/tokens/revoke.html", {"token": token})
