"""API keys: list, create (the secret shown once), revoke."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from accounts.tenancy import is_owner
from portal import selectors
from portal.access import tenant_view
from portal.app_forms import ApiKeyCreateForm


@tenant_view
def key_list(request):
    context = {"keys": selectors.api_keys(tenant=request.tenant)}
    return render(request, "portal/app/keys/list.html", context)


# never_cache: the answer to a successful POST holds the secret; no browser
# or proxy may keep a copy of it.
@never_cache
@require_http_methods(["GET", "POST"])
@tenant_view(owner=True)
def key_create(request):
    form = ApiKeyCreateForm(request.POST or None, models=selectors.served_models())
    if request.method == "POST" and form.is_valid():
        key, secret = api_key_create(
            tenant=request.tenant,
            name=form.cleaned_data["name"],
            created_by=request.user,
            expires_at=form.expires_at(),
            allowed_models=form.cleaned_data["allowed_models"],
            allowed_ips=form.cleaned_data["allowed_ips"],
            rpm_limit=form.cleaned_data["rpm_limit"],
            tpm_limit=form.cleaned_data["tpm_limit"],
            max_in_flight=form.cleaned_data["max_in_flight"],
        )
        # Rendered, not redirected: the secret exists only in this response.
        return render(
            request, "portal/app/keys/created.html", {"key": key, "secret": secret}
        )
    return render(request, "portal/app/keys/create.html", {"form": form})


@require_http_methods(["GET", "POST"])
@tenant_view
def key_revoke(request, key_id: int):
    # Looked up before the role is checked: another tenant's key is a 404
    # for everyone, whatever their role here.
    key = get_object_or_404(ApiKey, pk=key_id, tenant=request.tenant)
    if not is_owner(request.membership):
        raise PermissionDenied(_("Only the tenant's owners can revoke keys."))
    if request.method == "POST":
        if key.revoked_at is None:
            api_key_revoke(key=key, actor=request.user)
            messages.success(
                request,
                _("Revoked “%(name)s”. Requests with it are refused within seconds.")
                % {"name": key.name},
            )
        return redirect("keys")
    return render(request, "portal/app/keys/revoke.html", {"key": key})
