"""
Every public, portal and console page, with data in its lists, at a phone's
width (390 px) and a laptop's (1280 px): nothing overflows the page sideways
(wide tables and code scroll inside their own box), axe-core finds no
serious or critical accessibility violation, and a screenshot of each is
kept under test-artifacts/screenshots/pages/.

The pages are read from the URL confs, so a new page fails
test_every_page_is_visited_or_skipped_for_a_reason until it is listed here.
One browser per test, one signed-in context per role, the pages in a loop.
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import members, roles
from accounts.models import Membership
from accounts.services import api_key_create, api_key_revoke
from api.services import token_create
from billing.models import ModelPrice, PriceChange
from relay.models import UsageRecord
from tests import factories
from tests.browser.conftest import SCREENSHOTS, TIMEOUT_MS

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)
AXE = Path(settings.BASE_DIR) / "tests/clients/node_modules/axe-core/axe.min.js"
# What fails the test; "moderate" and "minor" findings are left to review.
BLOCKING = {"serious", "critical"}

# URL names that are not pages a person reads, with the reason.
NOT_PAGES = {
    "logout": "POST only",
    "verify_email_resend": "POST only",
    "member_invite": "POST only",
    "member_role": "POST only",
    "member_remove": "POST only",
    "invitation_revoke": "POST only",
    "usage_csv": "CSV download",
    "billing_topup": "POST only",
    "billing_redeem": "POST only",
    "billing_alert": "POST only",
    "console:tenant_suspend": "POST only",
    "console:tenant_resume": "POST only",
    "console:tenant_adjust": "POST only",
    "console:tenant_plan": "POST only",
    "console:tenant_key_revoke": "POST only",
    "console:tenant_verification_resend": "POST only",
    "console:channel_test": "POST only",
    "console:channel_toggle": "POST only",
    "console:price_export": "CSV download",
    "console:price_change_cancel": "POST only",
    "console:usage_export": "CSV download",
    # A staff member with a second factor set up: the same chrome as the
    # enrolment page, which is visited; tests/browser/test_staff_twofactor.py
    # walks through it.
    "twofactor:verify": "needs an enrolled authenticator",
}


def url_names() -> set[str]:
    """The names of every URL of the portal (public and signed-in), the
    console and the staff's second factor."""
    wanted = ("portal.urls", "portal.app_urls", "console.urls", "accounts.twofactor")

    def walk(patterns, namespace: str, inside: bool):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                module = getattr(entry.urlconf_module, "__name__", "")
                ns = f"{entry.namespace}:" if entry.namespace else namespace
                yield from walk(
                    entry.url_patterns, ns, inside or module.startswith(wanted)
                )
            elif isinstance(entry, URLPattern) and inside and entry.name:
                yield namespace + entry.name

    return set(walk(get_resolver().url_patterns, "", False))


@dataclass
class Site:
    """The data every list shows a row of, and the paths of its pages."""

    public: dict[str, str]  # URL name: path, for a visitor
    portal: dict[str, str]  # for the tenant's owner
    console: dict[str, str]  # for a superuser
    owner_cookie: str
    staff_cookie: str
    enrolling_cookie: str  # a staff member yet to set up a second factor


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def site(live_server_url, alice, bob, channel, settings) -> Site:
    settings.STRIPE_SECRET_KEY = ""  # the notice in place of the top-up form
    tenant = alice.tenant
    key = tenant.api_keys.get()
    alice.user.email_verified_at = None  # the banner asking to confirm it
    alice.user.save()
    # At gpt-4.1-mini's prices, so that the cost breakdown adds up: 1,000
    # input tokens x 400 + 200 cached x 100 + 5 output x 1,600 nano-USD.
    ok = factories.usage_record(
        alice,
        prompt_tokens=1200,
        cached_tokens=200,
        input_price=400,
        cached_input_price=100,
        output_price=1600,
        charged=428_000,
    )
    factories.usage_record(
        alice,
        status=UsageRecord.Status.UPSTREAM_ERROR,
        http_status=502,
        error="every upstream failed",
        charged=0,
    )
    payment = factories.payment(alice, status="paid")
    factories.payment(alice)
    member = factories.member(tenant, "carol@example.com")
    members.invitation_create(
        tenant=tenant,
        email="dave@example.com",
        role=Membership.Role.MEMBER,
        invited_by=alice.user,
    )
    _, invitation_secret = members.invitation_create(
        tenant=bob.tenant,
        email="erin@example.com",
        role=Membership.Role.MEMBER,
        invited_by=bob.user,
    )
    old, _ = api_key_create(tenant=tenant, name="old laptop", created_by=alice.user)
    api_key_revoke(key=old, actor=alice.user)
    token, _ = token_create(tenant=tenant, user=alice.user, name="ci")
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    PriceChange.objects.create(
        model_price=price,
        effective_at=timezone.now() + timedelta(days=30),
        input_per_mtok=price.input_per_mtok,
        output_per_mtok=price.output_per_mtok,
    )
    staff = factories.staff("sam@switchboard.test", superuser=True)
    enrolling = factories.staff("sue@switchboard.test", roles.SUPPORT)
    uid = urlsafe_base64_encode(force_bytes(member.pk))
    reset_token = default_token_generator.make_token(member)
    return Site(
        public={
            "home": "/",
            "pricing": "/pricing/",
            "docs": "/docs/",
            "signup": "/signup/",
            "login": "/login/",
            "verify_email": "/verify-email/not-a-token/",
            "email_change_confirm": "/account/email/confirm/not-a-token/",
            "password_reset": "/password-reset/",
            "password_reset_done": "/password-reset/sent/",
            "password_reset_confirm": f"/password-reset/{uid}/{reset_token}/",
            "password_reset_complete": "/password-reset/done/",
            "invitation_accept": f"/invitations/{invitation_secret}/",
        },
        portal={
            "dashboard": "/app/",
            "keys": "/app/keys/",
            "key_create": "/app/keys/new/",
            "key_revoke": f"/app/keys/{key.pk}/revoke/",
            "key_budget": f"/app/keys/{key.pk}/budget/",
            "tenant_budget": "/app/keys/budget/",
            "tokens": "/app/tokens/",
            "token_create": "/app/tokens/new/",
            "token_revoke": f"/app/tokens/{token.pk}/revoke/",
            "usage": "/app/usage/",
            "usage_detail": f"/app/usage/{ok.request_id}/",
            "billing": "/app/billing/",
            "billing_ledger": "/app/billing/ledger/",
            "billing_payments": "/app/billing/payments/",
            "billing_payment": f"/app/billing/payments/{payment.pk}/",
            "members": "/app/members/",
            "account": "/account/",
            "email_change": "/account/email/",
            "password_change": "/account/password/",
        },
        console={
            "console:dashboard": "/console/",
            "console:tenants": "/console/tenants/",
            "console:tenant": f"/console/tenants/{tenant.pk}/",
            "console:channels": "/console/channels/",
            "console:prices": "/console/prices/",
            "console:auto_tiers": "/console/auto/",
            "console:price_import": "/console/prices/import/",
            "console:price_change": f"/console/prices/{price.pk}/change/",
            "console:usage": "/console/usage/",
            "console:usage_detail": f"/console/usage/{ok.request_id}/",
            "console:payments": "/console/payments/",
            "console:audit": "/console/audit/",
            "twofactor:enrol": "/console/2fa/setup/",
        },
        owner_cookie=session_cookie(alice.user),
        staff_cookie=session_cookie(staff),
        enrolling_cookie=session_cookie(enrolling),
    )


def signed_in(browser, live_server_url: str, cookie: str | None, locale: str = "en-US"):
    # The browser's locale is its Accept-Language: zh-CN gets the pages in
    # Chinese (LocaleMiddleware).
    context = browser.new_context(
        base_url=live_server_url,
        viewport={"width": WIDTHS[-1], "height": 900},
        locale=locale,
    )
    context.set_default_timeout(TIMEOUT_MS)
    # axe-core in every page before its own scripts; an init script is not
    # subject to the page's Content-Security-Policy.
    context.add_init_script(path=str(AXE))
    if cookie:
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": cookie,
                    "url": live_server_url,
                }
            ]
        )
    return context


# The outermost elements reaching past the viewport, outside any box that
# scrolls or clips them: what widens the page.
WIDEST = """(width) => {
  const clipped = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  };
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !clipped(e))
    .filter(e => !e.parentElement
      || e.parentElement.getBoundingClientRect().right <= width + 1)
    .slice(0, 5)
    .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}#${e.id}`
              + ` (${Math.round(e.getBoundingClientRect().right)} px)`);
}"""


def axe_violations(page) -> list[str]:
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def visit_all(
    context, pages: dict[str, str], prefix: str, *, axe: bool = True
) -> list[str]:
    """Every page at every width: what overflowed and what axe found (axe
    runs in English only: the markup is the same in both languages)."""
    problems = []
    page = context.new_page()
    folder = SCREENSHOTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in pages.items():
        # Loaded once, then seen at each width: the layout is CSS's.
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        response = page.goto(path)
        if response.status >= 500 or response.status == 404:
            problems.append(f"{name} ({path}): HTTP {response.status}")
            continue
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            where = f"{name} ({path}) at {width} px"
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                wide = page.evaluate(WIDEST, width)
                problems.append(f"{where}: {scroll_width} px wide; {wide}")
            if axe:
                problems += [f"{where}: {v}" for v in axe_violations(page)]
            slug = name.split(":")[-1]
            page.screenshot(
                path=str(folder / f"{prefix}-{slug}-{width}.png"), full_page=True
            )
    page.close()
    return problems


def test_every_page_is_visited_or_skipped_for_a_reason(site):
    visited = {*site.public, *site.portal, *site.console}
    assert url_names() - visited - set(NOT_PAGES) == set()
    assert visited & set(NOT_PAGES) == set()


def test_public_and_portal_pages_fit_both_widths_and_pass_axe(
    browser, live_server_url, site
):
    problems = []
    visitor = signed_in(browser, live_server_url, None)
    problems += visit_all(visitor, site.public, "public")
    visitor.close()
    owner = signed_in(browser, live_server_url, site.owner_cookie)
    problems += visit_all(owner, site.portal, "portal")
    owner.close()
    assert not problems, "\n".join(problems)


def test_public_portal_and_console_pages_fit_both_widths_in_chinese(
    browser, live_server_url, site
):
    problems = []
    for cookie, pages, prefix in (
        (None, site.public, "public"),
        (site.owner_cookie, site.portal, "portal"),
        (
            site.staff_cookie,
            {k: v for k, v in site.console.items() if k.startswith("console:")},
            "console",
        ),
    ):
        context = signed_in(browser, live_server_url, cookie, locale="zh-CN")
        page = context.new_page()
        page.goto(next(iter(pages.values())))
        assert page.evaluate("document.documentElement.lang") == "zh-hans"
        page.close()
        problems += visit_all(context, pages, f"zh-{prefix}", axe=False)
        context.close()
    assert not problems, "\n".join(problems)


def test_console_pages_fit_both_widths_and_pass_axe(
    browser, live_server_url, site, settings
):
    problems = []
    staff = signed_in(browser, live_server_url, site.staff_cookie)
    pages = {k: v for k, v in site.console.items() if k.startswith("console:")}
    problems += visit_all(staff, pages, "console")
    staff.close()
    settings.SWITCHBOARD_STAFF_2FA = True
    enrolling = signed_in(browser, live_server_url, site.enrolling_cookie)
    problems += visit_all(
        enrolling,
        {k: v for k, v in site.console.items() if k.startswith("twofactor:")},
        "console",
    )
    enrolling.close()
    assert not problems, "\n".join(problems)
