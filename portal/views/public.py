"""Pages anyone can read: home, pricing with its calculator, quickstart docs."""

from decimal import Decimal

from django.shortcuts import render

from portal.context_processors import request_membership, request_wallet
from portal.forms import CostCalculatorForm
from portal.services import pricing as price_list


def site_url(request) -> str:
    """The site's own address as the visitor reached it, without a slash."""
    return request.build_absolute_uri("/").rstrip("/")


def home(request):
    return render(request, "portal/public/home.html", {"base_url": site_url(request)})


def pricing(request):
    """The served models at the visitor's prices: its plan's when signed in
    on one, the catalog's otherwise; with the cost of a daily volume when the
    calculator was filled in."""
    membership = request_membership(request)
    wallet = request_wallet(request)
    plan = wallet.plan if wallet is not None else None
    multiplier = plan.multiplier if plan is not None else Decimal(1)
    rows = price_list.price_rows(multiplier=multiplier)
    form = CostCalculatorForm(request.GET or None)
    estimates = None
    if form.is_valid():
        estimates = price_list.estimate(
            rows,
            input_tokens=form.cleaned_data["input_tokens"],
            output_tokens=form.cleaned_data["output_tokens"],
        )
    return render(
        request,
        "portal/public/pricing.html",
        {
            "text_rows": [row for row in rows if not row.per_image_only],
            "image_rows": [row for row in rows if row.images],
            "plan": plan if multiplier != 1 else None,
            "tenant": membership.tenant if membership is not None else None,
            "form": form,
            "estimates": estimates,
            "has_cache_write": any(row.cache_write is not None for row in rows),
            "has_per_request": any(row.per_request for row in rows),
            "has_estimated_images": any(
                image.estimated for row in rows for image in row.images
            ),
        },
    )


def docs(request):
    return render(request, "portal/public/docs.html", {"base_url": site_url(request)})
