"""API keys: list, create (the secret shown once), revoke; key and tenant
budgets."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from accounts.tenancy import is_owner
from billing import budgets
from portal import selectors
from portal.access import tenant_view
from portal.app_forms import ApiKeyCreateForm, BudgetForm


@tenant_view
def key_list(request):
    keys = list(selectors.api_keys(tenant=request.tenant))
    in_use = budgets.key_budgets(key_ids=[key.pk for key in keys])
    for key in keys:
        key.budget_uses = in_use.get(key.pk, [])
    context = {
        "keys": keys,
        "tenant_budgets": budgets.tenant_budgets(tenant_id=request.tenant.pk),
    }
    return render(request, "portal/app/keys/list.html", context)


# never_cache: the answer to a successful POST holds the secret; no browser
# or proxy may keep a copy of it.
@never_cache
@require_http_methods(["GET", "POST"])
@tenant_view(owner=True)
def key_create(request):
    form = ApiKeyCreateForm(request.POST or None, models=selectors.served_models())
    if request.method == "POST" and form.is_valid():
        key, secret = budgets.key_create(
            tenant=request.tenant,
            name=form.cleaned_data["name"],
            created_by=request.user,
            expires_at=form.expires_at(),
            allowed_models=form.cleaned_data["allowed_models"],
            allowed_ips=form.cleaned_data["allowed_ips"],
            rpm_limit=form.cleaned_data["rpm_limit"],
            tpm_limit=form.cleaned_data["tpm_limit"],
            max_in_flight=form.cleaned_data["max_in_flight"],
            cache_ttl=form.cleaned_data["cache_ttl"],
            caps=form.caps(),
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


def _budget_page(request, *, key: ApiKey | None):
    caps = budgets.budget_caps(tenant=request.tenant, key=key)
    form = BudgetForm(request.POST or None, initial=BudgetForm.initial_of(caps))
    if request.method == "POST" and form.is_valid():
        budgets.budgets_set(
            tenant=request.tenant, key=key, caps=form.caps(), actor=request.user
        )
        messages.success(
            request,
            _("Budgets of “%(name)s” saved.") % {"name": key.name}
            if key
            else _("The tenant's budgets are saved."),
        )
        return redirect("keys")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "portal/app/keys/budget.html",
        {"form": form, "key": key},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@tenant_view
def key_budget(request, key_id: int):
    key = get_object_or_404(ApiKey, pk=key_id, tenant=request.tenant)
    if not is_owner(request.membership):
        raise PermissionDenied(_("Only the tenant's owners can set budgets."))
    return _budget_page(request, key=key)


@require_http_methods(["GET", "POST"])
@tenant_view(owner=True)
def tenant_budget(request):
    return _budget_page(request, key=None)
