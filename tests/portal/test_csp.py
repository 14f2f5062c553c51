"""
Security headers of the portal, the public pages and the management API: a
Content-Security-Policy without 'unsafe-inline' on every page an owner can
reach (and pages that need nothing inline), `Cache-Control: no-store` on
every page that may show a secret or a tenant's data, and /api/ answering
with default-src 'none'.
"""

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Membership
from tests import factories

# Where a crawl must not go: away from the portal, or changing state on GET.
NOT_CRAWLED = ("/static/", "/admin/", "/console/", "/api/", "/logout/", "/v1/")
MAX_PAGES = 80


class _Page(HTMLParser):
    """The links of a page, and whatever in it a strict CSP would block."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if "style" in attrs:
            self.inline.append(f'<{tag} style="{attrs["style"]}">')
        if any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag}> with an inline event handler")
        if tag == "style":
            self.inline.append("<style> block")
        if tag == "script" and not attrs.get("src"):
            self.inline.append("<script> without src")
        if "javascript:" in (attrs.get("href") or ""):
            self.inline.append(f'<{tag} href="{attrs["href"]}">')


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_strict_policy(response, where: str) -> None:
    policy = response.headers.get("Content-Security-Policy")
    assert policy, f"{where}: no Content-Security-Policy"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, where
    found = directives(policy)
    assert found["default-src"] == ["'self'"], where
    assert found["script-src"] == ["'self'"], where
    assert found["style-src"] == ["'self'"], where
    assert found["object-src"] == ["'none'"], where
    assert found["frame-ancestors"] == ["'none'"], where


def crawl(client, *starts: str) -> dict[str, object]:
    """GET every portal page reachable from `starts` by links; return the
    responses by path."""
    seen: dict[str, object] = {}
    queue = deque(starts)
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response
        if response.status_code in (301, 302):
            location = response["Location"]
            if location.startswith("/") and not location.startswith(NOT_CRAWLED):
                queue.append(location)
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for href in parse(response.content.decode()).links:
            href = urldefrag(href)[0]
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            link = parts.path + (f"?{parts.query}" if parts.query else "")
            if not link.startswith(NOT_CRAWLED) and link not in seen:
                queue.append(link)
    return seen


@pytest.fixture
def owner(client, alice, channel):
    """Alice signed in, her email unverified (the banner with its resend
    form shows), with usage, a payment, a member and an invitation to see."""
    record = factories.usage_record(alice)
    factories.usage_record(alice, status="error", http_status=502, error="boom")
    factories.payment(alice)
    factories.member(alice.tenant, "carol@example.com")
    client.force_login(alice.user)
    client.post(
        reverse("member_invite"), {"email": "dave@example.com", "role": "member"}
    )
    client.record = record
    return client


def test_every_page_an_owner_reaches_has_a_strict_policy(owner):
    pages = crawl(owner, "/", "/app/", "/account/")

    html_pages = {
        path: response
        for path, response in pages.items()
        if response.status_code == 200
        and "text/html" in response.get("Content-Type", "")
    }
    # The crawl reached the app, not just the front door.
    for expected in ("/app/", "/app/keys/", "/app/usage/", "/app/billing/"):
        assert expected in html_pages, sorted(pages)
    assert "/app/members/" in html_pages and "/pricing/" in html_pages
    assert f"/app/usage/{owner.record.request_id}/" in html_pages
    assert len(html_pages) >= 15, sorted(html_pages)
    for path, response in html_pages.items():
        assert_strict_policy(response, path)
        assert parse(response.content.decode()).inline == [], path


def test_the_pages_of_forms_and_secrets_have_a_strict_policy(owner, client):
    created = owner.post(reverse("key_create"), {"name": "ci"})
    assert created.status_code == 200 and "sk-sb-" in created.content.decode()
    assert_strict_policy(created, "key created")
    assert parse(created.content.decode()).inline == []

    for path in (reverse("key_create"), reverse("email_change")):
        response = owner.get(path)
        assert_strict_policy(response, path)
        assert parse(response.content.decode()).inline == [], path


def test_the_invitation_page_is_strict_and_never_stored(owner, db):
    link = re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", mail.outbox[-1].body)
    owner.logout()

    response = owner.get(link[1])

    assert response.status_code == 200
    assert_strict_policy(response, "invitation")
    assert response["Cache-Control"] == "no-store"
    assert parse(response.content.decode()).inline == []


def test_a_new_api_key_is_never_stored_by_a_cache(owner):
    response = owner.post(reverse("key_create"), {"name": "ci"})

    assert "sk-sb-" in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_every_signed_in_page_is_never_stored(owner):
    for path in ("/app/", "/app/keys/", "/app/billing/", "/account/", "/pricing/"):
        assert owner.get(path)["Cache-Control"] == "no-store", path


def test_public_pages_may_be_cached_for_signed_out_visitors(client, db):
    for path in ("/", "/pricing/", "/docs/"):
        response = client.get(path)
        assert response.status_code == 200
        assert_strict_policy(response, path)
        assert "no-store" not in response.get("Cache-Control", ""), path


def test_the_management_api_forbids_everything_and_is_never_stored(client, alice):
    client.force_login(alice.user)
    for path in ("/api/balance/", "/api/keys/", "/api/nowhere/"):
        response = client.get(path)
        policy = directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert response["Cache-Control"] == "no-store", path


def test_a_new_management_token_is_never_stored(client, alice):
    client.force_login(alice.user)

    response = client.post(
        "/api/tokens/", {"name": "ci"}, content_type="application/json"
    )

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    assert directives(response["Content-Security-Policy"])["default-src"] == ["'none'"]


def test_the_staff_areas_keep_their_own_policy(client, db):
    staff = factories.staff("ops@example.com", superuser=True)
    client.force_login(staff)

    response = client.get("/console/")

    assert directives(response["Content-Security-Policy"])["form-action"] == ["'self'"]
    assert response["Cache-Control"] == "no-store"


def test_a_member_sees_the_same_policy(client, alice):
    person = factories.member(alice.tenant, "carol@example.com")
    client.force_login(person)
    assert Membership.objects.filter(user=person).exists()

    for path in ("/app/", "/app/keys/", "/app/members/"):
        response = client.get(path)
        assert_strict_policy(response, path)
