from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from accounts import roles
from accounts.models import ApiKey, Membership, Tenant
from accounts.services import api_key_revoke, tenant_resume, tenant_suspend
from billing.money import format_usd_exact
from billing.staff import plan_assign, wallet_adjust
from console.access import console_view
from console.forms import AdjustForm, PlanForm, ReasonForm
from console.tenants import tenant_page, tenant_search
from console.views.base import render_console
from onboarding.registration import verification_resend


@console_view()
@require_safe
def tenant_list(request):
    query = request.GET.get("q", "").strip()[:200]
    return render_console(
        request,
        "console/tenants.html",
        _("Tenants"),
        {"query": query, "tenants": list(tenant_search(query))},
    )


def _page(request, tenant: Tenant, status: int = 200, **forms):
    page = tenant_page(tenant)
    context = {
        "page": page,
        "suspend_form": ReasonForm(prefix="suspend"),
        "resume_form": ReasonForm(prefix="resume"),
        "adjust_form": AdjustForm.fresh(),
        "plan_form": PlanForm(
            initial={"plan": page.wallet.plan if page.wallet else None}
        ),
        "revoke_form": ReasonForm(prefix="revoke"),
        **forms,
    }
    return render_console(
        request, "console/tenant.html", str(tenant), context, status=status
    )


@console_view()
@require_safe
def tenant_detail(request, pk: int):
    return _page(request, get_object_or_404(Tenant, pk=pk))


def _invalid(request, tenant, **forms):
    messages.error(request, _("Nothing was changed: correct the form below."))
    return _page(request, tenant, status=400, **forms)


def _reasoned_change(request, tenant, *, prefix: str, change, done, unchanged):
    """
    Run `change(reason)` with the reason typed in the ReasonForm `prefix`
    and say whether it changed anything (`done`) or not (`unchanged`).
    """
    form = ReasonForm(request.POST, prefix=prefix)
    if not form.is_valid():
        return _invalid(request, tenant, **{f"{prefix}_form": form})
    if change(form.cleaned_data["reason"]):
        messages.success(request, done)
    else:
        messages.warning(request, unchanged)
    return redirect("console:tenant", pk=tenant.pk)


def _tenant_status_view(prefix: str, change, done, unchanged):
    """A view that suspends or resumes a tenant (`change`), with a reason."""

    @console_view(roles.TENANT_STATUS)
    @require_POST
    def view(request, pk: int):
        tenant = get_object_or_404(Tenant, pk=pk)
        return _reasoned_change(
            request,
            tenant,
            prefix=prefix,
            change=lambda reason: change(
                tenant=tenant, reason=reason, actor=request.user
            ),
            done=str(done).format(tenant=tenant),
            unchanged=str(unchanged).format(tenant=tenant),
        )

    return view


tenant_suspend_view = _tenant_status_view(
    "suspend",
    tenant_suspend,
    done=gettext_lazy("{tenant} is suspended: its API keys get 403."),
    unchanged=gettext_lazy("{tenant} was already suspended."),
)
tenant_resume_view = _tenant_status_view(
    "resume",
    tenant_resume,
    done=gettext_lazy("{tenant} is active again."),
    unchanged=gettext_lazy("{tenant} was not suspended."),
)


@console_view(roles.MONEY)
@require_POST
def tenant_adjust(request, pk: int):
    tenant = get_object_or_404(Tenant, pk=pk)
    form = AdjustForm(request.POST)
    if not form.is_valid():
        return _invalid(request, tenant, adjust_form=form)
    amount = form.signed_amount()
    entry = wallet_adjust(
        tenant=tenant,
        amount=amount,
        reason=form.cleaned_data["reason"],
        actor=request.user,
        # One reference per rendered form: a double submission adjusts once.
        reference=f"console:{form.cleaned_data['token']}",
    )
    if entry is None:
        messages.warning(request, _("This form was already submitted: adjusted once."))
    else:
        done = (
            _("Credited %(amount)s to %(tenant)s.")
            if amount > 0
            else _("Debited %(amount)s to %(tenant)s.")
        )
        messages.success(
            request,
            done
            % {
                "amount": format_usd_exact(abs(amount), grouping=True),
                "tenant": tenant,
            },
        )
    return redirect("console:tenant", pk=pk)


@console_view(roles.MONEY)
@require_POST
def tenant_plan(request, pk: int):
    tenant = get_object_or_404(Tenant, pk=pk)
    form = PlanForm(request.POST)
    if not form.is_valid():
        return _invalid(request, tenant, plan_form=form)
    plan = form.cleaned_data["plan"]
    plan_assign(
        tenant=tenant, plan=plan, actor=request.user, reason=form.cleaned_data["reason"]
    )
    messages.success(
        request,
        _("%(tenant)s is on %(plan)s.")
        % {"tenant": tenant, "plan": plan or _("catalog prices")},
    )
    return redirect("console:tenant", pk=pk)


@console_view(roles.MONEY)
@require_POST
def tenant_key_revoke(request, pk: int, key_id: int):
    tenant = get_object_or_404(Tenant, pk=pk)
    key = get_object_or_404(ApiKey, pk=key_id, tenant=tenant)
    return _reasoned_change(
        request,
        tenant,
        prefix="revoke",
        change=lambda reason: api_key_revoke(
            key=key, actor=request.user, reason=reason
        ),
        done=_("Key %(prefix)s… is revoked.") % {"prefix": key.prefix},
        unchanged=_("Key %(prefix)s… was already revoked.") % {"prefix": key.prefix},
    )


@console_view(roles.TENANT_STATUS)
@require_POST
def tenant_verification_resend(request, pk: int, user_id: int):
    tenant = get_object_or_404(Tenant, pk=pk)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), tenant=tenant, user_id=user_id
    )
    user = membership.user
    if user.email_verified_at is not None:
        messages.info(
            request, _("%(email)s is already verified.") % {"email": user.email}
        )
    elif verification_resend(
        user=user,
        actor=request.user,
        site_url=request.build_absolute_uri("/").rstrip("/"),
    ):
        messages.success(
            request,
            _("Sent a new verification link to %(email)s.") % {"email": user.email},
        )
    else:
        messages.error(
            request,
            _("The email to %(email)s could not be sent.") % {"email": user.email},
        )
    return redirect("console:tenant", pk=pk)
